"""Applying provider events to a message: deduplicated on the provider's event ids, in lifecycle order whatever
the order of arrival, every retry and failure kept as an attempt.

Pure: the ingest consumer reads the messages a batch names, calls `apply` once per message with all of that
message's events of the batch, and writes each changed message once (functions/messages/dal/messages.py).

The status is a function of the whole history, never of the last event: the highest `Status.rank` reached,
ties broken by time. So `delivered` then `sent` ends in `delivered`, a replay changes nothing, and the same set
of events gives the same message in any order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from functions.messages.models.message import HistoryEntry, MessageState, ProviderEvent, Status

# A fixed namespace: the same (tenant, provider, message key) is the same message id in every environment.
_NAMESPACE = uuid.UUID("1f6b8e34-4c0e-5a55-9a0b-6d1f0b3c2a71")
MAX_HISTORY = 200  # events kept per message; older attempts are summarised in `dropped_events`


def message_id_for(tenant: str, provider: str, message_key: str) -> str:
    """The internal id of the message `provider` calls `message_key` in `tenant` (no look-up needed)."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant}\x1f{provider}\x1f{message_key}"))


def message_id_of(tenant: str, event: ProviderEvent) -> str:
    """The message an event belongs to. A message the ATS records with the provider's id of it (it sent the
    message through SES, SendGrid or Twilio: tags `provider` and `provider_message_id`) is the very message that
    provider's events name, so the ATS's record and the delivery events meet on one item."""
    provider, key = event.tags.get("provider"), event.tags.get("provider_message_id")
    if provider and key:
        return message_id_for(tenant, provider, key)
    return message_id_for(tenant, event.provider.value, event.message_key)


@dataclass(frozen=True)
class Applied:
    """What applying a batch's events to one message did."""

    state: MessageState
    new_events: tuple[ProviderEvent, ...]  # the events not seen before, in time order
    created: bool
    newly_failed: bool  # the message reached a permanent failure with this batch: `DeliveryFailed`
    content: ProviderEvent | None  # the newest new event carrying a subject or body, if any

    @property
    def changed(self) -> bool:
        return bool(self.new_events)


def current_status(history: Iterable[HistoryEntry]) -> Status:
    """The highest rank reached; on equal rank the later event wins (a bounce after a failure report)."""
    best: HistoryEntry | None = None
    for entry in history:
        if best is None or (entry.status.rank, entry.at) > (best.status.rank, best.at):
            best = entry
    return best.status if best is not None else Status.QUEUED


def thread_of(event: ProviderEvent) -> str | None:
    """The thread a message belongs to: the provider's conversation (a Teams chat or channel), else the root of
    the RFC 5322 References chain, else the message it replies to, else its own Message-ID."""
    if event.conversation_id:
        return event.conversation_id
    if event.references:
        return event.references[0]
    return event.in_reply_to or event.rfc_message_id


def _permanent_failure(history: Sequence[HistoryEntry]) -> bool:
    return any(e.permanent and e.status.failure for e in history)


def apply(tenant: str, message_id: str, state: MessageState | None, events: Sequence[ProviderEvent]) -> Applied:
    """Apply `events` (all of one message) to `state` (None: not stored yet). Events already in its history are
    skipped, so a replayed webhook is a no-op."""
    if not events:
        raise ValueError("apply needs at least one event")
    seen = state.event_ids if state is not None else set()
    fresh: dict[str, ProviderEvent] = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.status.rank, e.event_id)):
        if event.event_id not in seen and event.event_id not in fresh:
            fresh[event.event_id] = event
    new_events = tuple(fresh.values())
    if not new_events:
        assert state is not None  # with no state every event is new
        return Applied(state, (), created=False, newly_failed=False, content=None)

    created = state is None
    first = new_events[0]
    if state is None:
        state = MessageState(
            tenant=tenant,
            message_id=message_id,
            channel=first.channel,
            direction=first.direction,
            provider=first.provider.value,
            message_key=first.message_key,
            status=first.status,
            first_at=first.occurred_at,
            last_at=first.occurred_at,
        )
    else:
        state = replace(state, history=list(state.history))
    failed_before = _permanent_failure(state.history)

    for event in new_events:
        state.history.append(
            HistoryEntry(
                event_id=event.event_id,
                status=event.status,
                at=event.occurred_at,
                provider=event.provider.value,
                provider_event=event.provider_event,
                detail=event.detail,
                attempt=event.attempt,
                permanent=event.permanent,
            )
        )
        _merge_facts(state, event)
    state.history.sort(key=lambda e: (e.at, e.status.rank, e.event_id))
    if len(state.history) > MAX_HISTORY:
        overflow = len(state.history) - MAX_HISTORY
        state.dropped_events += overflow
        state.history = state.history[overflow:]
    state.status = current_status(state.history)
    state.first_at = min(state.first_at, *(e.occurred_at for e in new_events))
    state.last_at = max(state.last_at, *(e.occurred_at for e in new_events))
    content = next((e for e in reversed(new_events) if e.subject is not None or e.body is not None), None)
    return Applied(
        state,
        new_events,
        created=created,
        newly_failed=not failed_before and _permanent_failure(state.history),
        content=content,
    )


def _merge_facts(state: MessageState, event: ProviderEvent) -> None:
    """Facts a later event adds (ids, parties, the thread): the first value reported stays, gaps are filled."""
    state.rfc_message_id = state.rfc_message_id or event.rfc_message_id
    state.in_reply_to = state.in_reply_to or event.in_reply_to
    state.references = state.references or event.references
    state.thread_id = state.thread_id or thread_of(event)
    state.candidate_id = state.candidate_id or event.candidate_id
    state.requisition_id = state.requisition_id or event.requisition_id
    state.sender = state.sender or event.sender
    state.recipients = state.recipients or event.recipients
