"""The message lifecycle: deduplication on provider event ids, lifecycle order whatever the arrival order,
attempts, permanent failures, threads, and the ingest use case over an in-memory store."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.messages.dal.messages import StaleWrite
from functions.messages.logic.ingest import Incoming, ingest
from functions.messages.logic.lifecycle import apply, current_status, message_id_for, message_id_of, thread_of
from functions.messages.models.message import (
    Channel,
    Direction,
    HistoryEntry,
    MessageState,
    Provider,
    ProviderEvent,
    Status,
)
from functions.messages.models.policy import ContentMode, MessagePolicy

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def event(
    status: Status, minutes: int = 0, *, eid: str | None = None, key: str = "sg-1", **extra: Any
) -> ProviderEvent:
    return ProviderEvent(
        provider=extra.pop("provider", Provider.SENDGRID),
        event_id=eid or f"{key}-{status.value}-{minutes}",
        message_key=key,
        channel=extra.pop("channel", Channel.EMAIL),
        direction=extra.pop("direction", Direction.OUTBOUND),
        status=status,
        occurred_at=T0 + timedelta(minutes=minutes),
        provider_event=status.value,
        **extra,
    )


def test_message_ids_are_stable_and_tenant_scoped() -> None:
    assert message_id_for("acme", "ses", "m1") == message_id_for("acme", "ses", "m1")
    assert message_id_for("acme", "ses", "m1") != message_id_for("globex", "ses", "m1")
    assert message_id_for("acme", "ses", "m1") != message_id_for("acme", "sendgrid", "m1")


def test_an_ats_record_with_the_provider_id_joins_the_provider_events() -> None:
    recorded = event(
        Status.SENT, provider=Provider.ATS, key="ats-77", tags={"provider": "ses", "provider_message_id": "0100abc"}
    )
    delivered = event(Status.DELIVERED, provider=Provider.SES, key="0100abc")
    assert message_id_of("acme", recorded) == message_id_of("acme", delivered)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_the_status_is_the_same_in_any_arrival_order(order: tuple[int, ...]) -> None:
    events = [event(Status.SENT, 0), event(Status.DELIVERED, 1), event(Status.OPENED, 5)]
    state = None
    for i in order:
        state = apply("acme", "m", state, [events[i]]).state
    assert state is not None
    assert state.status is Status.OPENED
    assert [e.status for e in state.history] == [Status.SENT, Status.DELIVERED, Status.OPENED]


def test_delivered_arriving_before_sent_ends_delivered() -> None:
    first = apply("acme", "m", None, [event(Status.DELIVERED, 2)])
    second = apply("acme", "m", first.state, [event(Status.SENT, 1)])
    assert second.state.status is Status.DELIVERED
    assert second.changed and not second.created


def test_a_replay_is_a_no_op() -> None:
    once = apply("acme", "m", None, [event(Status.SENT), event(Status.DELIVERED, 1)])
    again = apply("acme", "m", once.state, [event(Status.SENT), event(Status.DELIVERED, 1)])
    assert not again.changed
    assert again.state is once.state


def test_duplicates_inside_one_batch_count_once() -> None:
    applied = apply("acme", "m", None, [event(Status.SENT, eid="x"), event(Status.SENT, eid="x")])
    assert len(applied.new_events) == 1 and len(applied.state.history) == 1


def test_retries_are_attempts_and_a_permanent_failure_is_reported_once() -> None:
    delays = [event(Status.DELAYED, i, attempt=i, detail="4.4.1") for i in (1, 2)]
    state = apply("acme", "m", None, [event(Status.SENT), *delays]).state
    assert state.attempts == 2 and state.status is Status.DELAYED
    bounced = apply("acme", "m", state, [event(Status.BOUNCED, 9, permanent=True, detail="Permanent.General")])
    assert bounced.newly_failed and bounced.state.status is Status.BOUNCED and bounced.state.attempts == 3
    later = apply("acme", "m", bounced.state, [event(Status.BOUNCED, 10, permanent=True, eid="other")])
    assert not later.newly_failed


def test_engagement_outranks_a_late_failure_report() -> None:
    history = [
        HistoryEntry("a", Status.DELIVERED, T0, "ses", "Delivery"),
        HistoryEntry("b", Status.OPENED, T0 + timedelta(minutes=3), "ses", "Open"),
        HistoryEntry("c", Status.FAILED, T0 + timedelta(minutes=1), "ses", "Rendering Failure"),
    ]
    assert current_status(history) is Status.OPENED
    assert current_status([]) is Status.QUEUED


def test_the_thread_is_the_conversation_else_the_root_of_the_references() -> None:
    assert thread_of(event(Status.SENT, conversation_id="19:chat@thread.v2")) == "19:chat@thread.v2"
    assert thread_of(event(Status.SENT, references=("root@x", "mid@x"), in_reply_to="mid@x")) == "root@x"
    assert thread_of(event(Status.SENT, in_reply_to="mid@x", rfc_message_id="me@x")) == "mid@x"
    assert thread_of(event(Status.SENT, rfc_message_id="me@x")) == "me@x"
    assert thread_of(event(Status.SENT)) is None


def test_the_first_facts_stay_and_gaps_are_filled() -> None:
    first = apply("acme", "m", None, [event(Status.SENT, candidate_id="c-1")]).state
    later = apply("acme", "m", first, [event(Status.DELIVERED, 1, candidate_id="c-2", requisition_id="r-9")]).state
    assert (later.candidate_id, later.requisition_id) == ("c-1", "r-9")


class MemoryStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], MessageState] = {}
        self.terms: dict[str, list[str]] = {}
        self.loads = self.saves = 0
        self.conflicts = 0

    def load(self, keys: Any) -> dict[tuple[str, str], MessageState]:
        self.loads += 1
        return {k: self.items[k] for k in keys if k in self.items}

    def save(self, state: MessageState) -> MessageState:
        self.saves += 1
        if self.conflicts:
            self.conflicts -= 1
            raise StaleWrite(state.message_id)
        stored = self.items.get((state.tenant, state.message_id))
        if (stored.version if stored else 0) != state.version:
            raise StaleWrite(state.message_id)
        written = replace(state, version=state.version + 1)
        self.items[(state.tenant, state.message_id)] = written
        return written

    def put_terms(self, state: MessageState, digests: Any) -> None:
        self.terms[state.message_id] = list(digests)


class Published:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, events: Any) -> None:
        self.events.extend(events)


class Sealer:
    def seal(self, tenant: str, message_id: str, field_name: str, text: str) -> str:
        return f"sealed:{tenant}:{message_id}:{field_name}:{len(text)}"


class Indexer:
    def terms(self, tenant: str, text: str) -> list[str]:
        return [f"h1:{tenant}:{w}" for w in text.split()]


def run(store: MemoryStore, incoming: list[Incoming], mode: ContentMode = ContentMode.METADATA) -> Any:
    published = Published()
    report = ingest(
        incoming,
        store=store,  # type: ignore[arg-type]
        policy_of=lambda tenant: MessagePolicy(tenant=tenant, content=mode),
        sealer=Sealer(),
        indexer=Indexer(),
        publisher=published,
    )
    return report, published


def test_a_batch_is_one_read_and_one_write_per_message() -> None:
    store = MemoryStore()
    batch = [
        Incoming("acme", event(s, i, key=f"sg-{i % 10}")) for i, s in enumerate([Status.SENT, Status.DELIVERED] * 50)
    ]
    report, published = run(store, batch)
    assert store.loads == 1 and store.saves == 10 == report.messages_written
    assert report.applied == 100 and report.duplicates == 0
    assert [e.detail_type for e in published.events] == ["MessageRecorded"] * 10
    again, republished = run(store, batch)
    assert again.applied == 0 and again.duplicates == 100 and store.saves == 10 and not republished.events


def test_tenants_never_share_a_message() -> None:
    store = MemoryStore()
    run(store, [Incoming("acme", event(Status.SENT)), Incoming("globex", event(Status.SENT))])
    assert {t for t, _ in store.items} == {"acme", "globex"} and len(store.items) == 2


def test_a_stale_write_reads_again_and_applies_again() -> None:
    store = MemoryStore()
    store.conflicts = 1
    report, _ = run(store, [Incoming("acme", event(Status.SENT))])
    assert report.stale_retries == 1 and report.messages_written == 1


def test_a_permanent_failure_publishes_delivery_failed_with_a_code() -> None:
    store = MemoryStore()
    _, published = run(store, [Incoming("acme", event(Status.BOUNCED, permanent=True, detail="Permanent/General"))])
    failed = [e for e in published.events if e.detail_type == "DeliveryFailed"]
    assert len(failed) == 1 and failed[0].reason_code == "Permanent.General" and failed[0].attempts == 1


def test_content_is_kept_only_under_a_full_policy() -> None:
    with_content = event(Status.DELIVERED, direction=Direction.INBOUND, subject="Interview", body="see you monday")
    store = MemoryStore()
    run(store, [Incoming("acme", with_content)])
    (kept,) = store.items.values()
    assert kept.sealed_body is None and kept.sealed_subject is None and not store.terms

    store = MemoryStore()
    run(store, [Incoming("acme", with_content)], ContentMode.FULL)
    (kept,) = store.items.values()
    assert kept.sealed_subject and kept.sealed_body and kept.content_hash
    assert "see you monday" not in repr(kept)
    assert store.terms[kept.message_id] == ["h1:acme:Interview", "h1:acme:see", "h1:acme:you", "h1:acme:monday"]
