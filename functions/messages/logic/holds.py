"""Use cases: legal holds on messages (place, read, list, release), and the active holds that the ingest
consumer, the redaction and the erasure consult.

A hold covers one message, or every message of a candidate or of a requisition, those stored later included. It
stops every removal of what it covers: the erasure that follows the retention domain's `RecordPurged`, a
disclosure redaction (logic/redaction.py says why), and the deletion of the storage tiers to come.

What a hold covers is decided from the active hold items themselves (`ActiveHolds.covering`, one Query of the
tenant's holds). The `holds` marks on the messages (their ids, shown as `on_hold`, carried into an export) are
kept in step by the fan-out here and by the ingest consumer (`ActiveHolds.holds_for`, for a message stored after
the hold), but no removal depends on a mark having been written: a fan-out interrupted, or racing a message's
first write, cannot let a held message go.

Placing is idempotent on the hold id: the same hold again re-runs its fan-out (healing one a crash or a race left
short) and publishes `MessageHoldChanged` again; the same id with other facts, or a released id, is a 409. The
fan-out marks page by page (one conditional UpdateItem per message, its version moved on) within a time budget;
where it stops is kept on the hold, and the same request repeated goes on from there. Releasing works the same way.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from functions.messages.dal.holds import HoldExists, HoldReader, HoldStore
from functions.messages.dal.items import index_value
from functions.messages.dal.messages import IndexQuery, MessageStore
from functions.messages.models.holds_io import HOLD_ID_PATTERN, MessageHold, MessageHoldSubject
from functions.messages.models.message import MessageState
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest, Conflict
from shared.permissions import Permission, authorize, ensure_tenant

if TYPE_CHECKING:
    from shared.events import EventPublisher

MAX_PAGE = 100
FANOUT_PAGE = 100
# Marking is one UpdateItem per message (a few ms each in AWS): about 2,000 messages in the budget, within the
# function's 15 s timeout and API Gateway's 29 s. A requisition with more is marked over repeated requests.
FANOUT_BUDGET_SECONDS = 10.0
_HOLD_ID = re.compile(HOLD_ID_PATTERN)
_INDEX = {MessageHoldSubject.CANDIDATE: "ByCandidate", MessageHoldSubject.REQUISITION: "ByRequisition"}


@dataclass(frozen=True)
class HoldRequest:
    subject_kind: MessageHoldSubject
    subject_id: str
    reason: str
    owner: str
    review_at: datetime


class ActiveHolds:
    """A tenant's active holds, read with one Query on first use and kept for the life of this object: the ingest
    consumer builds one per SQS batch, an erasure one per purge."""

    def __init__(self, store: HoldReader) -> None:
        self._store = store
        self._cache: dict[str, list[MessageHold]] = {}

    def of(self, tenant: str) -> list[MessageHold]:
        if tenant not in self._cache:
            self._cache[tenant] = [h for h in self._store.active(tenant) if h.active]
        return self._cache[tenant]

    def holds_for(self, tenant: str, candidate_id: str | None, requisition_id: str | None) -> frozenset[str]:
        """The ids of the active holds on this candidate or this requisition: what a message stored for them now
        must carry. Without either id, none (and no read)."""
        if not candidate_id and not requisition_id:
            return frozenset()
        return frozenset(
            h.hold_id
            for h in self.of(tenant)
            if h.subject_kind is not MessageHoldSubject.MESSAGE and h.covers("", candidate_id, requisition_id)
        )

    def covering(self, state: MessageState) -> frozenset[str]:
        """The ids of the active holds that cover this message, whether or not its marks say so."""
        holds = self.of(state.tenant)
        active = {h.hold_id for h in holds}
        return frozenset(
            h.hold_id for h in holds if h.covers(state.message_id, state.candidate_id, state.requisition_id)
        ) | (state.holds & active)


def check_hold_id(hold_id: str) -> str:
    if not _HOLD_ID.match(hold_id):
        raise BadRequest(
            "hold_id must be 1 to 128 letters, digits or `_ . : -`, starting with a letter or digit",
            details=[{"loc": ["path", "hold_id"], "msg": "invalid hold id", "type": "value_error"}],
        )
    return hold_id


def _stored_precision(moment: datetime) -> datetime:
    """`moment` as the hold item keeps it (UTC, milliseconds), so a repeated request compares equal."""
    return datetime.fromisoformat(clock.isoformat(moment))


def _same(stored: MessageHold, proposed: MessageHold) -> bool:
    fields = ("subject_kind", "subject_id", "reason", "owner", "review_at")
    return all(getattr(stored, f) == getattr(proposed, f) for f in fields)


def _publish(publisher: EventPublisher, hold: MessageHold, request_id: str) -> None:
    from functions.messages.models.holds_events import MessageHoldChanged  # built on a change only (cold start)

    publisher.publish(
        [
            MessageHoldChanged(
                tenant=hold.tenant,
                hold_id=hold.hold_id,
                held_kind=hold.subject_kind,
                active=hold.active,
                correlation_id=request_id,
            )
        ]
    )


def _fan_out(
    hold: MessageHold,
    *,
    add: bool,
    holds: HoldStore,
    messages: MessageStore,
    budget_seconds: float,
    page_size: int,
) -> MessageHold:
    """Mark (or unmark) the messages the hold covers, page by page, from where the last run stopped, until they
    are done or the budget is spent (at least one page); the hold with its progress, as saved."""
    tenant, hold_id = hold.tenant, hold.hold_id
    if hold.subject_kind is MessageHoldSubject.MESSAGE:
        found = messages.get(tenant, hold.subject_id)
        if found is not None and (hold_id in found.holds) != add:
            holds.mark(tenant, [found.message_id], hold_id, add=add)
        done = replace(hold, messages_held=int(add and found is not None), fanout_cursor=None)
        holds.save_progress(done)
        return done
    deadline = time.monotonic() + budget_seconds
    query = IndexQuery(_INDEX[hold.subject_kind], index_value(tenant, hold.subject_id), newest_first=False)
    cursor = hold.fanout_cursor
    count = hold.messages_held if (cursor or not add) else 0
    while True:
        page = messages.query(tenant, query, limit=page_size, cursor=cursor, filters={})
        covered = [m for m in page.messages if m.tenant == tenant]
        todo = [m.message_id for m in covered if (hold_id in m.holds) != add]
        holds.mark(tenant, todo, hold_id, add=add)
        cursor = page.cursor
        count = count + len(covered) if add else max(0, count - len(todo))
        progress = replace(hold, messages_held=count if (add or cursor) else 0, fanout_cursor=cursor)
        holds.save_progress(progress)
        if cursor is None or time.monotonic() >= deadline:
            return progress


def place_hold(
    actor: Actor,
    hold_id: str,
    request: HoldRequest,
    *,
    holds: HoldStore,
    messages: MessageStore,
    audit: AuditLog,
    publisher: EventPublisher,
    request_id: str,
    source_ip: str | None = None,
    budget_seconds: float = FANOUT_BUDGET_SECONDS,
    page_size: int = FANOUT_PAGE,
) -> tuple[MessageHold, bool]:
    """Place hold `hold_id` and mark what it covers; the hold (with its fan-out's progress) and whether it is new.

    BadRequest for a malformed id or a past review date; NotFound for a message hold on no message of the tenant;
    Conflict when the id names another hold or a released one.
    """
    check_hold_id(hold_id)
    authorize(
        actor,
        Permission.MANAGE_LEGAL_HOLDS,
        resource=f"message-hold/{hold_id}:place",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    now = clock.now()
    if request.review_at <= now:
        raise BadRequest("review_at must be in the future")
    proposed = MessageHold(
        tenant=actor.tenant,
        hold_id=hold_id,
        subject_kind=request.subject_kind,
        subject_id=request.subject_id,
        reason=request.reason,
        owner=request.owner,
        review_at=_stored_precision(request.review_at),
        placed_at=now,
        placed_by=actor.label,
    )
    stored = holds.get(actor.tenant, hold_id)
    created = stored is None
    if stored is None:
        # A candidate or a requisition may have no message yet: the hold then covers those stored later.
        if request.subject_kind is MessageHoldSubject.MESSAGE:
            found = messages.get(actor.tenant, request.subject_id)
            ensure_tenant(actor, found.tenant if found else None, "message")
        try:
            holds.create(proposed)
            stored = proposed
        except HoldExists:
            stored, created = holds.get(actor.tenant, hold_id), False
    assert stored is not None
    if not _same(stored, proposed):
        raise Conflict(f"message hold {hold_id} already exists with other facts: use a new hold id")
    if not stored.active:
        raise Conflict(f"message hold {hold_id} was released; a released hold id is not reused")
    # The hold item is written first: from then on it protects what it covers (`ActiveHolds.covering`), and a
    # crash during the fan-out is healed by the same request repeated.
    hold = _fan_out(
        stored, add=True, holds=holds, messages=messages, budget_seconds=budget_seconds, page_size=page_size
    )
    _publish(publisher, hold, request_id)
    return hold, created


def get_hold(
    actor: Actor, hold_id: str, *, holds: HoldStore, audit: AuditLog, request_id: str, source_ip: str | None = None
) -> MessageHold:
    """The caller's tenant's hold; NotFound for a missing one and another tenant's alike."""
    check_hold_id(hold_id)
    authorize(
        actor,
        Permission.MANAGE_LEGAL_HOLDS,
        resource=f"message-hold/{hold_id}:read",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    hold = holds.get(actor.tenant, hold_id)
    ensure_tenant(actor, hold.tenant if hold else None, "message hold")
    assert hold is not None
    return hold


def list_holds(
    actor: Actor,
    *,
    status: str,
    limit: int,
    cursor: str | None,
    holds: HoldStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> tuple[list[MessageHold], str | None]:
    """A page of the tenant's holds in hold-id order: active ones (`status` "active") or all (`status` "all")."""
    authorize(
        actor,
        Permission.MANAGE_LEGAL_HOLDS,
        resource="message-holds:list",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    if status not in ("active", "all"):
        raise BadRequest("status must be `active` or `all`")
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be 1 to {MAX_PAGE}")
    return holds.page(actor.tenant, active_only=status == "active", limit=limit, cursor=cursor)


def release_hold(
    actor: Actor,
    hold_id: str,
    reason: str,
    *,
    holds: HoldStore,
    messages: MessageStore,
    audit: AuditLog,
    publisher: EventPublisher,
    request_id: str,
    source_ip: str | None = None,
    budget_seconds: float = FANOUT_BUDGET_SECONDS,
    page_size: int = FANOUT_PAGE,
) -> MessageHold:
    """Release hold `hold_id` and unmark what it covered. A repeat returns the first release (and goes on with an
    unmarking that stopped on its budget). `MessageHoldChanged` (inactive) lets the erasure finish what the hold
    kept back."""
    check_hold_id(hold_id)
    authorize(
        actor,
        Permission.MANAGE_LEGAL_HOLDS,
        resource=f"message-hold/{hold_id}:release",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    hold = holds.get(actor.tenant, hold_id)
    ensure_tenant(actor, hold.tenant if hold else None, "message hold")
    assert hold is not None
    if hold.active:
        released = replace(
            hold, released_at=clock.now(), released_by=actor.label, release_reason=reason, fanout_cursor=None
        )
        if not holds.save_release(released):
            released = holds.get(actor.tenant, hold_id) or released  # a concurrent release won: that one stands
        hold = released
    hold = _fan_out(hold, add=False, holds=holds, messages=messages, budget_seconds=budget_seconds, page_size=page_size)
    _publish(publisher, hold, request_id)
    return hold
