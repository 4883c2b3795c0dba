"""Use cases: just-in-time auditor access (issue 13). A compliance officer gives an auditor time-bound access to
resource kinds of the officer's own tenant, reads and lists the tenant's grants, and revokes one at once.

The rules, each refused with a 403 whose audit entry says why (through `authorize`, one entry per decision):
- only compliance officers manage grants, and never a user who also holds `system_admin`;
- nobody grants access to themselves;
- a grant, and a revocation, needs a reason.
A grant runs at most `MAX_GRANT_DURATION` (30 days) and at least `MIN_GRANT_DURATION` (15 minutes); a bad bound
is a 400. That a `system_admin` never holds auditor access is enforced where the access is used, by the permission
check (shared/permissions.py): roles are known only from the verified token, so a grant given to a user who is, or
later becomes, a system_admin stays inert, and each attempt to use it is refused and audited.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from functions.platform.dal.auditor_grants import AuditorGrantStore, GrantExists
from shared import clock
from shared.access_grants import (
    MAX_GRANT_DURATION,
    MIN_GRANT_DURATION,
    USER_ID_PATTERN,
    AuditorGrant,
    AuditorGrantStatus,
    AuditorResourceKind,
    is_grant_id,
)
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest, Conflict
from shared.permissions import Permission, authorize, ensure_tenant

MAX_PAGE = 100
NO_REASON = "a grant needs a reason"
NO_REVOKE_REASON = "a revocation needs a reason"
SELF_GRANT = "separation of duties: nobody grants access to themselves"


@dataclass(frozen=True)
class GrantRequest:
    """What a compliance officer asks for: exactly one of `expires_at` and `duration`."""

    grantee: str
    kinds: frozenset[AuditorResourceKind]
    reason: str
    expires_at: datetime | None = None
    duration: timedelta | None = None


def _now() -> datetime:
    # Stored times keep milliseconds (clock.isoformat): what a route returns is what a later read returns.
    return _to_ms(clock.now())


def _to_ms(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def new_grant_id(now: datetime) -> str:
    """`ag-<UTC time to the second>-<32 random bits>`: unique, and newest-first when listed."""
    return f"ag-{now:%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


def _violation(actor: Actor, request: GrantRequest) -> str | None:
    if not request.reason.strip():
        return NO_REASON
    if request.grantee == actor.id:
        return SELF_GRANT
    return None


def _expiry(request: GrantRequest, now: datetime) -> datetime:
    if (request.expires_at is None) == (request.duration is None):
        raise BadRequest("give exactly one of expires_at and duration_hours")
    expires_at = request.expires_at if request.expires_at is not None else now + (request.duration or timedelta())
    if expires_at - now < MIN_GRANT_DURATION:
        raise BadRequest(f"a grant runs at least {MIN_GRANT_DURATION.total_seconds() / 60:.0f} minutes")
    if expires_at - now > MAX_GRANT_DURATION:
        raise BadRequest(f"a grant runs at most {MAX_GRANT_DURATION.days} days")
    return _to_ms(expires_at)


def grant_auditor_access(
    actor: Actor,
    request: GrantRequest,
    *,
    store: AuditorGrantStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> AuditorGrant:
    """Give `request.grantee` access to `request.kinds` of the actor's tenant until the requested expiry.

    Forbidden (audited with its reason) for a caller who may not manage grants, a self-grant or a blank reason;
    BadRequest for a malformed grantee, no resource kind, or an expiry outside the bounds.
    """
    if not re.match(USER_ID_PATTERN, request.grantee):
        raise BadRequest("grantee is not a user id")
    now = _now()
    grant_id = new_grant_id(now)
    authorize(
        actor,
        Permission.MANAGE_AUDITOR_ACCESS,
        resource=f"auditor-grants/{grant_id}/grantee/{request.grantee}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
        violation=_violation(actor, request),
    )
    if not request.kinds:
        raise BadRequest("a grant covers at least one resource kind")
    grant = AuditorGrant(
        tenant=actor.tenant,
        grant_id=grant_id,
        grantee=request.grantee,
        kinds=request.kinds,
        reason=request.reason.strip(),
        granted_by=actor.label,
        granted_at=now,
        expires_at=_expiry(request, now),
    )
    try:
        store.create(grant)
    except GrantExists:
        raise Conflict("a grant with the same id was given in the same second; retry") from None
    return grant


def get_auditor_grant(
    actor: Actor,
    grant_id: str,
    *,
    store: AuditorGrantStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> AuditorGrant:
    """One grant of the caller's tenant; NotFound for a missing one and another tenant's alike."""
    if not is_grant_id(grant_id):
        raise BadRequest("grant_id is not an auditor grant id (ag-<yyyymmddhhmmss>-<8 hex>)")
    authorize(
        actor,
        Permission.MANAGE_AUDITOR_ACCESS,
        resource=f"auditor-grants/{grant_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    grant = store.get(actor.tenant, grant_id)
    ensure_tenant(actor, grant.tenant if grant else None, "auditor grant")
    assert grant is not None
    return grant


def list_auditor_grants(
    actor: Actor,
    *,
    limit: int,
    cursor: str | None,
    store: AuditorGrantStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> tuple[list[AuditorGrant], str | None]:
    """A page of the caller's tenant's grants, newest first, active, expired and revoked alike."""
    authorize(
        actor,
        Permission.MANAGE_AUDITOR_ACCESS,
        resource="auditor-grants",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be 1 to {MAX_PAGE}")
    return store.page(actor.tenant, limit=limit, cursor=cursor)


def revoke_auditor_grant(
    actor: Actor,
    grant_id: str,
    reason: str,
    *,
    store: AuditorGrantStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> AuditorGrant:
    """End a grant now: the next permission check of its grantee no longer finds it active (nothing caches it).

    A repeat returns the first revocation; an expired grant has nothing left to revoke (Conflict).
    """
    if not is_grant_id(grant_id):
        raise BadRequest("grant_id is not an auditor grant id (ag-<yyyymmddhhmmss>-<8 hex>)")
    authorize(
        actor,
        Permission.MANAGE_AUDITOR_ACCESS,
        resource=f"auditor-grants/{grant_id}/revoke",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
        violation=None if reason.strip() else NO_REVOKE_REASON,
    )
    grant = store.get(actor.tenant, grant_id)
    ensure_tenant(actor, grant.tenant if grant else None, "auditor grant")
    assert grant is not None
    now = _now()
    status = grant.status(now)
    if status is AuditorGrantStatus.REVOKED:
        return grant
    if status is AuditorGrantStatus.EXPIRED:
        raise Conflict(f"auditor grant {grant_id} expired at {clock.isoformat(grant.expires_at)}: nothing to revoke")
    if store.revoke(grant, at=now, by=actor.label, reason=reason.strip()):
        return replace(grant, revoked_at=now, revoked_by=actor.label, revoke_reason=reason.strip())
    # Revoked meanwhile by another request: its revocation stands. Otherwise the transaction lost a race.
    revoked = store.get(actor.tenant, grant_id)
    if revoked is None or revoked.revoked_at is None:
        raise Conflict(f"auditor grant {grant_id} was being changed by another request; retry")
    return revoked
