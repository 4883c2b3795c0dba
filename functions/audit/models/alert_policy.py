"""Anomalous-access alerts (issue 13 §7): a tenant's thresholds (the entity the detector and the routes share),
the settings and the request and response models of `GET`/`PUT /v1/audit-alert-policy` (docs/audit-alerts.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ConfigDict, Field

from shared.models import Model
from shared.settings import BaseSettings

MINUTES_PER_DAY = 1440


class Threshold(Model):
    """`limit` or more counted in one window of `window_minutes` raises an alert (once per window)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(ge=1, le=1_000_000, description="Alert when a window's count reaches this", examples=[500])
    window_minutes: int = Field(
        ge=1,
        le=MINUTES_PER_DAY,
        description="The window, in minutes; it must divide a day (1, 5, 10, 15, 30, 60, 120, ..., 1440): windows "
        "start at multiples of it from midnight UTC",
        examples=[15],
    )


class AlertPolicy(Model):
    """A tenant's thresholds: reads and exports by one user or client, refusals by one actor (or, at the gateway,
    one source address)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="False: the tenant's access is not watched (still audited)")
    reads: Threshold = Field(description="Allowed reads (`<domain>:...:read` actions) of distinct records")
    exports: Threshold = Field(description="Allowed exports (`<domain>:export` actions)")
    auth_failures: Threshold = Field(description="Refusals (denied outcomes): 401s at the gateway, 403s")


# Documented in docs/audit-alerts.md: a recruiter reads some dozens of records an hour; a bulk copy reads hundreds.
DEFAULT_POLICY = AlertPolicy(
    reads=Threshold(limit=500, window_minutes=15),
    exports=Threshold(limit=10, window_minutes=60),
    auth_failures=Threshold(limit=20, window_minutes=5),
)


@dataclass(frozen=True)
class StoredAlertPolicy:
    """A tenant's policy and its version (0: nobody set one, the defaults apply)."""

    tenant: str
    policy: AlertPolicy
    version: int
    updated_at: datetime | None = None
    updated_by: str | None = None


class VersionTaken(Exception):
    """Another change inserted the same version of a tenant's policy first."""


class AlertPolicyApiSettings(BaseSettings):
    AUDIT_TABLE_NAME: str = Field(min_length=3)


class AlertPolicyInput(AlertPolicy):
    """The whole policy: it replaces the tenant's current one (the defaults until then)."""


class AlertPolicyOutput(Model):
    tenant: str
    enabled: bool
    reads: Threshold
    exports: Threshold
    auth_failures: Threshold
    version: int = Field(description="Increases with every change; 0 while the defaults apply")
    is_default: bool = Field(description="True while the tenant has not set a policy")
    updated_at: datetime | None = None
    updated_by: str | None = Field(default=None, description="The actor label of the last change")
