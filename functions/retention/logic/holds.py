"""Use cases: legal holds on a person, an application or a vacancy (place, read, list, release).

A hold stops every removal of what it covers (the sweep and the applicant's own erasure alike: GDPR Art. 17(3)(e)
lets data kept for legal claims outlive an erasure request). Placing is idempotent on the hold id: the same hold
again re-applies its fan-out (healing one that a crash interrupted) and re-publishes `LegalHoldChanged`; the same
id with other facts is a 409. Releasing is idempotent too; a released hold id is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from functions.retention.dal.holds import HoldExists, HoldStore
from functions.retention.logic.ids import check_id
from functions.retention.models.entities import HoldSubject
from functions.retention.models.holds import LegalHold
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest, Conflict, NotFound
from shared.permissions import Permission, authorize, ensure_tenant

if TYPE_CHECKING:
    from functions.retention.models.events import LegalHoldChanged
    from shared.events import EventPublisher

MAX_PAGE = 100


@dataclass(frozen=True)
class HoldRequest:
    subject_kind: HoldSubject
    subject_id: str
    vacancy_id: str | None
    reason: str
    owner: str
    review_at: datetime


def _same(stored: LegalHold, proposed: LegalHold) -> bool:
    fields = ("subject_kind", "subject_id", "vacancy_id", "reason", "owner", "review_at")
    return all(getattr(stored, f) == getattr(proposed, f) for f in fields)


def _event(hold: LegalHold, request_id: str) -> LegalHoldChanged:
    from functions.retention.models.events import LegalHoldChanged  # on a change only (cold start)

    return LegalHoldChanged(
        tenant=hold.tenant,
        hold_id=hold.hold_id,
        held_kind=hold.subject_kind.value,
        held_id=hold.subject_id,
        vacancy_id=hold.vacancy_id,
        active=hold.active,
        correlation_id=request_id,
    )


def place_hold(
    actor: Actor,
    hold_id: str,
    request: HoldRequest,
    *,
    store: HoldStore,
    audit: AuditLog,
    publisher: EventPublisher,
    request_id: str,
    source_ip: str | None = None,
) -> tuple[LegalHold, int, bool]:
    """Place hold `hold_id`; return it, the number of records that carry it, and whether it is new.

    BadRequest for a malformed id, a past review date or an application without its vacancy; NotFound for an
    unknown subject; Conflict when the id names another hold or a released one.
    """
    check_id(hold_id, "hold_id")
    authorize(
        actor,
        Permission.MANAGE_LEGAL_HOLDS,
        resource=f"legal-hold/{hold_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    check_id(request.subject_id, "subject_id")
    if request.subject_kind is HoldSubject.APPLICATION:
        if request.vacancy_id is None:
            raise BadRequest("a hold on an application needs the application's vacancy_id")
        check_id(request.vacancy_id, "vacancy_id")
    elif request.vacancy_id is not None:
        raise BadRequest("vacancy_id is given for holds on an application only")
    now = clock.now()
    if request.review_at <= now:
        raise BadRequest("review_at must be in the future")
    proposed = LegalHold(
        tenant=actor.tenant,
        hold_id=hold_id,
        subject_kind=request.subject_kind,
        subject_id=request.subject_id,
        vacancy_id=request.vacancy_id,
        reason=request.reason,
        owner=request.owner,
        review_at=request.review_at,
        placed_at=now,
        placed_by=actor.label,
    )
    stored = store.get(actor.tenant, hold_id)
    created = stored is None
    if stored is None:
        if not store.subject_exists(proposed):
            raise NotFound(f"no {request.subject_kind.value}")
        try:
            store.create(proposed)
            stored = proposed
        except HoldExists:
            stored = store.get(actor.tenant, hold_id)
            created = False
    assert stored is not None
    if not _same(stored, proposed):
        raise Conflict(f"legal hold {hold_id} already exists with other facts: use a new hold id")
    if not stored.active:
        raise Conflict(f"legal hold {hold_id} was released; a released hold id is not reused")
    # The hold item is written first, so a crash during the fan-out is healed by the ATS's retry of the same PUT.
    held = store.mark(store.covered(stored), hold_id, add=True)
    publisher.publish([_event(stored, request_id)])
    return stored, held, created


def get_hold(
    actor: Actor, hold_id: str, *, store: HoldStore, audit: AuditLog, request_id: str, source_ip: str | None = None
) -> LegalHold:
    """The caller's tenant's hold; NotFound for a missing one and another tenant's alike."""
    check_id(hold_id, "hold_id")
    authorize(
        actor,
        Permission.MANAGE_LEGAL_HOLDS,
        resource=f"legal-hold/{hold_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    hold = store.get(actor.tenant, hold_id)
    ensure_tenant(actor, hold.tenant if hold else None, "legal hold")
    assert hold is not None
    return hold


def list_holds(
    actor: Actor,
    *,
    status: str,
    limit: int,
    cursor: str | None,
    store: HoldStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> tuple[list[LegalHold], str | None]:
    """A page of the tenant's holds: active ones (`status` "active") or all (`status` "all")."""
    authorize(
        actor,
        Permission.MANAGE_LEGAL_HOLDS,
        resource="legal-holds",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    if status not in ("active", "all"):
        raise BadRequest("status must be `active` or `all`")
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be 1 to {MAX_PAGE}")
    return store.page(actor.tenant, active_only=status == "active", limit=limit, cursor=cursor)


def release_hold(
    actor: Actor,
    hold_id: str,
    reason: str,
    *,
    store: HoldStore,
    audit: AuditLog,
    publisher: EventPublisher,
    request_id: str,
    source_ip: str | None = None,
) -> tuple[LegalHold, int]:
    """Release hold `hold_id`: its id leaves every record it covered. A repeat returns the first release."""
    check_id(hold_id, "hold_id")
    authorize(
        actor,
        Permission.MANAGE_LEGAL_HOLDS,
        resource=f"legal-hold/{hold_id}/release",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    hold = store.get(actor.tenant, hold_id)
    ensure_tenant(actor, hold.tenant if hold else None, "legal hold")
    assert hold is not None
    if hold.active:
        released = hold.model_copy(
            update={"released_at": clock.now(), "released_by": actor.label, "release_reason": reason}
        )
        if not store.save_release(released):
            released = store.get(actor.tenant, hold_id) or released  # a concurrent release won: report that one
        hold = released
    freed = store.mark(store.covered(hold), hold_id, add=False)
    publisher.publish([_event(hold, request_id)])
    return hold, freed
