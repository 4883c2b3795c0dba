"""Erasure of a person's message content when the retention domain purges their record (`RecordPurged`, source
`ats.retention`), and its completion when a legal hold that kept some of it back is released.

Which messages (`person_id` is the ATS's person id, which messages carry as their candidate id):
- `person`: every message of that candidate (`person_id`, or the record id itself when the event carries none);
- `application`, `candidate` (removed from a vacancy) and `registration` (a talent pool): the candidate's
  messages of that requisition (`vacancy_id`); without a vacancy id, none, rather than all of the person's;
- `vacancy`: none. A vacancy's own record holds no person's messages; each of its applications is purged with its
  own event.

What goes is the content (logic/redaction.py `remove_content`: sealed subject and body, search terms); what stays
is what the tenant's `metadata` policy keeps of any message: ids, parties, channel, statuses and their history,
thread, candidate and requisition, and `content_hash`. `redacted_at` is set, so a provider event carrying the
content again is not kept.

A message a legal hold covers keeps its content (GDPR Art. 17(3)(e)); the others of the same purge are erased.
When any was kept the erasure is recorded as held back (an audit entry DENIED naming the holds, and a pending
erasure item naming them) and nothing is published; when a hold is released, every pending erasure it kept is run
again, and the one that then goes through publishes `MessageContentErased`. Everything is idempotent: a purge
delivered twice erases nothing more and appends nothing more (the audit entries are keyed by the event id); the
event's id is derived from the purge's, so consumers deduplicate it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from functions.messages.dal.holds import ErasureLedger, HoldStore
from functions.messages.dal.items import index_value
from functions.messages.dal.messages import IndexQuery, MessageStore
from functions.messages.logic.holds import ActiveHolds
from functions.messages.logic.redaction import ContentTools, held_reason, remove_content
from functions.messages.models.holds_events import MessageContentErased, MessageHoldChanged, PurgedKind, RecordPurged
from functions.messages.models.holds_io import PendingErasure
from shared import clock
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor
from shared.observability import logger

if TYPE_CHECKING:
    from shared.events import EventPublisher

JOB = "messages-erasure"
ERASE_ACTION = "messages:erase"
PAGE = 100
_EVENT_NAMESPACE = uuid.UUID("3b0e8f52-6c1d-5f4a-8e27-9a4d1c6b2f80")
_IN_ONE_VACANCY = (PurgedKind.APPLICATION, PurgedKind.CANDIDATE, PurgedKind.REGISTRATION)


class ErasureStore(HoldStore, ErasureLedger, Protocol):
    """The holds adapter (functions/messages/dal/holds.py `DynamoHoldStore`) serves both."""


@dataclass(frozen=True)
class ErasurePorts:
    messages: MessageStore
    holds: ErasureStore
    tools: ContentTools
    audit: AuditLog
    publisher: EventPublisher


@dataclass(frozen=True)
class ErasureScope:
    """The messages one purge covers, and the purge it answers."""

    tenant: str
    record_kind: PurgedKind
    record_id: str
    person_id: str
    vacancy_id: str | None
    purge_event_id: str

    @property
    def resource(self) -> str:
        where = f"@{self.vacancy_id}" if self.vacancy_id else ""
        return f"messages-of/{self.record_kind.value}/{self.record_id}{where}:erase"


@dataclass
class ErasureOutcome:
    scope: ErasureScope
    erased: int = 0  # messages whose content this run removed
    unchanged: int = 0  # messages already without content
    held: dict[str, frozenset[str]] = field(default_factory=dict)  # message id -> the holds that kept it
    published: bool = False

    @property
    def holds(self) -> frozenset[str]:
        return frozenset().union(*self.held.values()) if self.held else frozenset()


def scope_of(event: RecordPurged) -> ErasureScope | None:
    """The messages a purge covers (see the module docstring); None when it covers none."""
    if event.record_kind is PurgedKind.VACANCY:
        return None
    person = event.person_id or (event.record_id if event.record_kind is PurgedKind.PERSON else None)
    if person is None:
        return None
    vacancy = event.vacancy_id if event.record_kind in _IN_ONE_VACANCY else None
    if event.record_kind in _IN_ONE_VACANCY and vacancy is None:
        return None
    return ErasureScope(event.tenant, event.record_kind, event.record_id, person, vacancy, event.event_id)


def erase_for_purge(event: RecordPurged, actor: Actor, ports: ErasurePorts) -> ErasureOutcome | None:
    """Erase the content of the messages `event` covers (None when it covers none)."""
    scope = scope_of(event)
    if scope is None:
        logger.info("purge covers no messages", extra={"record_kind": event.record_kind.value})
        return None
    return _erase(scope, actor, ports, request_id=event.event_id)


def resume_after_release(event: MessageHoldChanged, actor: Actor, ports: ErasurePorts) -> list[ErasureOutcome]:
    """Run again every erasure that the released hold kept back (nothing for a hold placed)."""
    if event.active:
        return []
    outcomes = []
    for pending in ports.holds.pending_blocked_by(event.tenant, event.hold_id):
        scope = ErasureScope(
            pending.tenant,
            PurgedKind(pending.record_kind),
            pending.record_id,
            pending.person_id,
            pending.vacancy_id,
            pending.purge_event_id,
        )
        outcomes.append(_erase(scope, actor, ports, request_id=event.event_id))
    return outcomes


def _erase(scope: ErasureScope, actor: Actor, ports: ErasurePorts, *, request_id: str) -> ErasureOutcome:
    outcome = ErasureOutcome(scope)
    query = IndexQuery("ByCandidate", index_value(scope.tenant, scope.person_id), newest_first=False)
    filters = {"requisition_id": scope.vacancy_id} if scope.vacancy_id else {}
    cursor: str | None = None
    moment = clock.now()
    while True:
        page = ports.messages.query(scope.tenant, query, limit=PAGE, cursor=cursor, filters=filters)
        # The holds are read again for every page, so a hold placed while a large erasure runs stops it soon.
        active = ActiveHolds(ports.holds)
        for message in page.messages:
            if message.tenant != scope.tenant:
                continue
            held = active.covering(message)
            if held:
                outcome.held[message.message_id] = held
                continue
            removal = remove_content(message, store=ports.messages, tools=ports.tools, at=moment)
            if removal.content_removed:
                outcome.erased += 1
            else:
                outcome.unchanged += 1
        cursor = page.cursor
        if cursor is None:
            break
    _record(outcome, actor, ports, request_id)
    return outcome


def _record(outcome: ErasureOutcome, actor: Actor, ports: ErasurePorts, request_id: str) -> None:
    scope = outcome.scope

    def entry(result: Outcome, reason: str) -> AuditEntry:
        return AuditEntry(
            tenant=scope.tenant,
            actor=actor.label,
            action=ERASE_ACTION,
            resource=scope.resource,
            outcome=result,
            request_id=request_id,
            reason=reason[:512],
        )

    if outcome.held:
        ports.holds.put_pending(
            PendingErasure(
                tenant=scope.tenant,
                record_kind=scope.record_kind.value,
                record_id=scope.record_id,
                person_id=scope.person_id,
                vacancy_id=scope.vacancy_id,
                purge_event_id=scope.purge_event_id,
                holds=outcome.holds,
                messages_held=len(outcome.held),
                at=clock.now(),
            )
        )
        if outcome.erased:
            ports.audit.append(entry(Outcome.ALLOWED, f"content of {outcome.erased} message(s) erased"))
        ports.audit.append(entry(Outcome.DENIED, held_reason(outcome.holds, f"{len(outcome.held)} message(s)")))
        return
    ports.holds.delete_pending(scope.tenant, scope.record_kind.value, scope.record_id, scope.vacancy_id)
    ports.audit.append(
        entry(Outcome.ALLOWED, f"content of {outcome.erased} message(s) erased; {outcome.unchanged} had none")
    )
    ports.publisher.publish(
        [
            MessageContentErased(
                tenant=scope.tenant,
                event_id=str(uuid.uuid5(_EVENT_NAMESPACE, f"{scope.tenant}/{scope.purge_event_id}/erased")),
                correlation_id=scope.purge_event_id,
                record_kind=scope.record_kind,
                record_id=scope.record_id,
                person_id=scope.person_id,
                vacancy_id=scope.vacancy_id,
                purge_event_id=scope.purge_event_id,
                messages=outcome.erased + outcome.unchanged,
            )
        ]
    )
    outcome.published = True
