"""The tenant's message policy: read by anyone who reads messages, changed by compliance and the company's admins
(optimistic locking on its version; every read and change audited by the permission check)."""

from __future__ import annotations

from functions.messages.dal.policy import PolicyStore, StalePolicy
from functions.messages.models.policy import ContentMode, MessagePolicy
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import Conflict
from shared.permissions import Permission, authorize

RESOURCE = "/v1/message-policy"


def read_policy(
    actor: Actor, *, store: PolicyStore, audit: AuditLog, request_id: str, source_ip: str | None = None
) -> MessagePolicy:
    authorize(
        actor, Permission.READ_MESSAGES, resource=RESOURCE, request_id=request_id, audit=audit, source_ip=source_ip
    )
    return store.get(actor.tenant)


def change_policy(
    actor: Actor,
    content: ContentMode,
    read_version: int,
    *,
    store: PolicyStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> MessagePolicy:
    """The policy as changed; Conflict when `read_version` is not the stored version (someone changed it since)."""
    authorize(
        actor,
        Permission.MANAGE_MESSAGE_POLICY,
        resource=RESOURCE,
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    current = store.get(actor.tenant)
    if current.version != read_version:
        raise Conflict(f"the policy is at version {current.version}, not {read_version}: read it again")
    if current.content is content:
        return current
    try:
        return store.put(
            MessagePolicy(
                tenant=actor.tenant,
                content=content,
                version=current.version,
                updated_at=clock.now(),
                updated_by=actor.label,
            )
        )
    except StalePolicy:
        raise Conflict("the policy changed while it was being saved: read it again") from None
