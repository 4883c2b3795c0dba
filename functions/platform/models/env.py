"""Settings of the platform functions, read from the environment the template gives them."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BaseSettings


class HealthSettings(BaseSettings):
    PLATFORM_TABLE_NAME: str = Field(min_length=3)
    SERVICE_VERSION: str = Field(min_length=1)


class AuditedApiSettings(BaseSettings):
    AUDIT_TABLE_NAME: str = Field(min_length=3)
