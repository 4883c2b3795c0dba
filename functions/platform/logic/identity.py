"""Use case: tell callers, people and machines alike, who the verified token says they are."""

from __future__ import annotations

from functions.platform.models.entities import Identity
from shared.audit import AuditLog
from shared.auth import Actor
from shared.permissions import Permission, authorize


def who_am_i(actor: Actor, *, request_id: str, audit: AuditLog, source_ip: str | None = None) -> Identity:
    """The caller's tenant, kind, subject, roles and scopes; the read is audited like any access to personal data."""
    authorize(
        actor,
        Permission.READ_OWN_IDENTITY,
        resource=f"identity/{actor.id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    return Identity(
        tenant=actor.tenant,
        kind=actor.kind,
        subject=actor.id,
        username=actor.username,
        roles=sorted(role.value for role in actor.roles),
        scopes=sorted(scope.value for scope in actor.scopes),
    )
