"""Settings of the platform functions, read from the environment the template gives them."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BaseSettings


class PlatformTableSettings(BaseSettings):
    """Functions that only read or write the platform table: the health probe and the pre-token trigger."""

    PLATFORM_TABLE_NAME: str = Field(min_length=3)


class HealthSettings(PlatformTableSettings):
    SERVICE_VERSION: str = Field(min_length=1)
    # How old the last heartbeat may be before GET /v1/health says "degraded": a few periods of the health
    # workflow's schedule (infra/constructs/platform.py), so one late run is not an outage.
    HEALTH_STALE_AFTER_SECONDS: int = Field(gt=0)


class AuditedApiSettings(BaseSettings):
    AUDIT_TABLE_NAME: str = Field(min_length=3)
