"""The tenant's message policy: read by anyone who reads messages, changed by compliance and the company's admins
(optimistic locking on its version; every read and change audited by the permission check). It says what is kept
of a message (metadata, or content too) and when a message moves to the warm and cold tiers and is deleted
(functions/messages/logic/tiers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from functions.messages.dal.policy import PolicyStore, StalePolicy
from functions.messages.models.policy import MAX_TIER_DAYS, MIN_TIER_DAYS, TIER_RULE, ContentMode, MessagePolicy
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest, Conflict
from shared.permissions import Permission, authorize

RESOURCE = "/v1/message-policy"


def read_policy(
    actor: Actor, *, store: PolicyStore, audit: AuditLog, request_id: str, source_ip: str | None = None
) -> MessagePolicy:
    authorize(
        actor, Permission.READ_MESSAGES, resource=RESOURCE, request_id=request_id, audit=audit, source_ip=source_ip
    )
    return store.get(actor.tenant)


@dataclass(frozen=True)
class TierDays:
    """Days after a message's first event when it moves warm, moves cold and is deleted; None keeps the current."""

    warm_after_days: int | None = None
    cold_after_days: int | None = None
    delete_after_days: int | None = None


def check_tiers(warm: int, cold: int, delete: int) -> None:
    """BadRequest naming the rule unless `MIN_TIER_DAYS <= warm < cold < delete <= MAX_TIER_DAYS`."""
    if not MIN_TIER_DAYS <= warm < cold < delete <= MAX_TIER_DAYS:
        raise BadRequest(
            f"the periods must keep {TIER_RULE} "
            f"(got warm_after_days={warm}, cold_after_days={cold}, delete_after_days={delete})",
            details=[
                {
                    "loc": ["body", name],
                    "msg": TIER_RULE,
                    "type": "value_error",
                }
                for name in ("warm_after_days", "cold_after_days", "delete_after_days")
            ],
        )


def change_policy(
    actor: Actor,
    content: ContentMode,
    read_version: int,
    *,
    store: PolicyStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
    tiers: TierDays | None = None,
) -> MessagePolicy:
    """The policy as changed; BadRequest when the periods break `TIER_RULE`; Conflict when `read_version` is not the
    stored version (someone changed it since)."""
    authorize(
        actor,
        Permission.MANAGE_MESSAGE_POLICY,
        resource=RESOURCE,
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    current = store.get(actor.tenant)
    given = tiers or TierDays()
    warm = current.warm_after_days if given.warm_after_days is None else given.warm_after_days
    cold = current.cold_after_days if given.cold_after_days is None else given.cold_after_days
    delete = current.delete_after_days if given.delete_after_days is None else given.delete_after_days
    check_tiers(warm, cold, delete)
    if current.version != read_version:
        raise Conflict(f"the policy is at version {current.version}, not {read_version}: read it again")
    if (current.content, current.warm_after_days, current.cold_after_days, current.delete_after_days) == (
        content,
        warm,
        cold,
        delete,
    ):
        return current
    try:
        return store.put(
            MessagePolicy(
                tenant=actor.tenant,
                content=content,
                warm_after_days=warm,
                cold_after_days=cold,
                delete_after_days=delete,
                version=current.version,
                updated_at=clock.now(),
                updated_by=actor.label,
            )
        )
    except StalePolicy:
        raise Conflict("the policy changed while it was being saved: read it again") from None
