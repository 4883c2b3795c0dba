"""Applying a batch of provider events: one read of every message the batch names, one write per changed message.

The receivers (webhooks, the ATS's API, captured SMTP) verified and queued what they got; the ingest consumer
parses each queued delivery into `ProviderEvent`s and hands the whole SQS batch here. Events of one message are
applied together (functions/messages/logic/lifecycle.py), so a SendGrid batch of 100 events costs at most 100
writes, fewer when several events name one message, and a replay costs none.

Content (subject, body) is kept only when the tenant's policy says `full`: sealed with the platform's field
cipher, bound to the message id, and indexed for search as keyed digests of its tokens. Under `metadata` the
content is dropped before anything is written.

Events for the bus carry deterministic ids and are published before the write: a retry after a failed write
publishes the same event ids again (consumers deduplicate on them), and a message is never stored without its
`MessageRecorded`/`DeliveryFailed` having been published.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from functions.messages.dal.messages import MessageStore, StaleWrite
from functions.messages.logic.lifecycle import Applied, apply, message_id_of
from functions.messages.models.message import MessageState, ProviderEvent
from functions.messages.models.policy import ContentMode, MessagePolicy

if TYPE_CHECKING:
    from shared.events import DomainEvent, EventPublisher

_WRITE_ATTEMPTS = 4
_EVENT_NAMESPACE = uuid.UUID("8d0c3f0e-0a8e-5b6c-b5f2-4c8e1b9f7a23")
_CODE = re.compile(r"[^A-Za-z0-9_.:-]+")


@dataclass(frozen=True)
class Incoming:
    """One provider event for one tenant (the tenant comes from the verified receiver, never from the payload)."""

    tenant: str
    event: ProviderEvent


class ContentSealer(Protocol):
    def seal(self, tenant: str, message_id: str, field_name: str, text: str) -> str: ...


class TermIndexer(Protocol):
    def terms(self, tenant: str, text: str) -> list[str]: ...


# (tenant, candidate id, requisition id) -> the ids of the active legal holds on either (logic/holds.py ActiveHolds)
HoldsFor = Callable[[str, str | None, str | None], frozenset[str]]


@dataclass
class IngestReport:
    received: int = 0
    applied: int = 0
    duplicates: int = 0
    messages_written: int = 0
    messages_created: int = 0
    failures_published: int = 0
    stale_retries: int = 0
    written: list[MessageState] = field(default_factory=list)
    failed: set[tuple[str, str]] = field(default_factory=set)  # (tenant, message id): their records are retried


def _code(text: str | None) -> str | None:
    """A provider's code as an event Identifier (the bus accepts ids and codes only)."""
    if not text:
        return None
    cleaned = _CODE.sub(".", text).strip(".")[:128]
    return cleaned if cleaned and cleaned[0].isalnum() else None


def _bus_events(applied: Applied, correlation_id: str | None) -> list[DomainEvent]:
    from functions.messages.models.events import DeliveryFailed, MessageRecorded

    state = applied.state
    out: list[DomainEvent] = []

    def event_id(kind: str) -> str:
        return str(uuid.uuid5(_EVENT_NAMESPACE, f"{state.tenant}/{state.message_id}/{kind}"))

    if applied.created:
        out.append(
            MessageRecorded(
                tenant=state.tenant,
                event_id=event_id("recorded"),
                correlation_id=correlation_id,
                message_id=state.message_id,
                channel=state.channel,
                direction=state.direction,
                status=state.status,
                candidate_id=state.candidate_id,
                requisition_id=state.requisition_id,
            )
        )
    if applied.newly_failed:
        failure = next(e for e in reversed(state.history) if e.permanent and e.status.failure)
        out.append(
            DeliveryFailed(
                tenant=state.tenant,
                event_id=event_id("failed"),
                correlation_id=correlation_id,
                message_id=state.message_id,
                channel=state.channel,
                status=failure.status,
                attempts=state.attempts,
                reason_code=_code(failure.detail),
                candidate_id=state.candidate_id,
                requisition_id=state.requisition_id,
            )
        )
    return out


def _with_content(
    applied: Applied, policy: MessagePolicy, sealer: ContentSealer, indexer: TermIndexer
) -> tuple[MessageState, list[str]]:
    """The state to write and the search terms of its content (none under a metadata-only policy)."""
    state, content = applied.state, applied.content
    if content is None or policy.content is not ContentMode.FULL or state.redacted_at is not None:
        return state, []
    subject, body = content.subject or "", content.body or ""
    state.content_hash = hashlib.sha256(f"{subject}\x1f{body}".encode()).hexdigest()
    state.sealed_subject = sealer.seal(state.tenant, state.message_id, "subject", subject) if subject else None
    state.sealed_body = sealer.seal(state.tenant, state.message_id, "body", body) if body else None
    return state, indexer.terms(state.tenant, f"{subject}\n{body}")


def ingest(
    incoming: Sequence[Incoming],
    *,
    store: MessageStore,
    policy_of: Callable[[str], MessagePolicy],
    sealer: ContentSealer,
    indexer: TermIndexer,
    publisher: EventPublisher,
    correlation_id: str | None = None,
    holds_for: HoldsFor | None = None,
) -> IngestReport:
    """Apply every event of the batch. A message whose write failed (throttling that outlasted the retries) is in
    `report.failed`: the caller fails the SQS records that named it, they come back later, and applying them
    again is a no-op for what was written. Only a failed read of the batch raises."""
    report = IngestReport(received=len(incoming))
    groups: dict[tuple[str, str], list[ProviderEvent]] = defaultdict(list)
    for item in incoming:
        groups[(item.tenant, message_id_of(item.tenant, item.event))].append(item.event)
    stored = store.load(list(groups))
    for group, events in groups.items():
        try:
            _apply_group(
                group,
                events,
                stored.get(group),
                report,
                store,
                policy_of,
                sealer,
                indexer,
                publisher,
                correlation_id,
                holds_for,
            )
        except Exception as exc:  # noqa: BLE001 (one message's failure must not fail the others of the batch)
            from shared.observability import logger

            report.failed.add(group)
            logger.warning("message not applied", extra={"message_id": group[1], "error": type(exc).__name__})
    return report


def _apply_group(
    group: tuple[str, str],
    events: list[ProviderEvent],
    current: MessageState | None,
    report: IngestReport,
    store: MessageStore,
    policy_of: Callable[[str], MessagePolicy],
    sealer: ContentSealer,
    indexer: TermIndexer,
    publisher: EventPublisher,
    correlation_id: str | None,
    holds_for: HoldsFor | None = None,
) -> None:
    tenant, message_id = group
    for attempt in range(_WRITE_ATTEMPTS):
        applied = apply(tenant, message_id, current, events)
        if not applied.changed:
            report.duplicates += len(events)
            return
        state, terms = _with_content(applied, policy_of(tenant), sealer, indexer)
        if holds_for is not None:
            # A message stored (or first given its candidate or requisition) after a hold on them was placed is
            # held too; marks are only ever added here, a release removes them (logic/holds.py).
            inherited = holds_for(tenant, state.candidate_id, state.requisition_id)
            if not inherited <= state.holds:
                state.holds = state.holds | inherited
        bus = _bus_events(applied, correlation_id)
        if bus:
            publisher.publish(bus)
        try:
            written = store.save(state)
        except StaleWrite:
            if attempt == _WRITE_ATTEMPTS - 1:
                raise
            report.stale_retries += 1
            current = store.load([group]).get(group)
            continue
        if terms:
            store.put_terms(written, terms)
        report.applied += len(applied.new_events)
        report.duplicates += len(events) - len(applied.new_events)
        report.messages_written += 1
        report.messages_created += applied.created
        report.failures_published += applied.newly_failed
        report.written.append(written)
        return
