"""Just-in-time auditor access (issue 13): the settings, request and response models of the auditor-grant routes.

The grant entity itself (`AuditorGrant`) is shared/access_grants.py's, since the permission check reads it too.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, ConfigDict, Field

from shared.access_grants import GRANT_ID_PATTERN, USER_ID_PATTERN, AuditorGrantStatus, AuditorResourceKind
from shared.models import Model
from shared.settings import BaseSettings

_REASON = "Why (an engagement or ticket reference, no personal data); not blank"


class AuditorGrantsApiSettings(BaseSettings):
    """The auditor-grant routes: grants in the platform table, every decision in the audit table."""

    PLATFORM_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)


class AuditorGrantInput(Model):
    """Give one auditor time-bound access to resource kinds of the caller's tenant: `expires_at` or
    `duration_hours`, exactly one."""

    model_config = ConfigDict(extra="forbid")

    grantee: str = Field(
        pattern=USER_ID_PATTERN,
        description="The auditor's user id (the `sub` of their token); never the caller's own",
        examples=["8f14e45f-ceea-467f-a0e6-7c0c4b5c2d11"],
    )
    resource_kinds: list[AuditorResourceKind] = Field(
        min_length=1,
        max_length=len(AuditorResourceKind),
        description="What the grant covers: the permissions `<kind>:*` the auditor role holds",
        examples=[["audit", "messages"]],
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the grant ends: at least 15 minutes and at most 30 days from now"
    )
    duration_hours: int | None = Field(
        default=None, ge=1, le=720, description="Instead of `expires_at`: hours from now, 1 to 720 (30 days)"
    )
    reason: str = Field(min_length=1, max_length=500, description=_REASON)


class AuditorGrantRevokeInput(Model):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="Why the access ends now; not blank")


class AuditorGrantOutput(Model):
    grant_id: str = Field(pattern=GRANT_ID_PATTERN, examples=["ag-20261127093000-1a2b3c4d"])
    tenant: str
    grantee: str = Field(description="The auditor's user id")
    resource_kinds: list[AuditorResourceKind]
    reason: str
    granted_by: str = Field(description="The compliance officer's actor label, `user:<sub>`")
    granted_at: datetime
    expires_at: datetime
    status: AuditorGrantStatus = Field(description="`active`, `expired` (by time) or `revoked`, at the service clock")
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None


class AuditorGrantPage(Model):
    grants: list[AuditorGrantOutput]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null at the end")
