"""Message reports, the synthetic probe and the drill's comparison, over in-memory fakes (no AWS).

The fake store answers `query` the way DynamoMessageStore does: it derives each message's index attributes with
the table's own mapping (`dal/items.to_item`), so a report reads exactly the partitions it would read in AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.messages.dal.items import INDEXES, to_item
from functions.messages.dal.messages import IndexQuery, Page
from functions.messages.logic import reports
from functions.messages.logic.lifecycle import current_status
from functions.messages.logic.reports import (
    SYNTHETIC_CANDIDATE,
    SYNTHETIC_DELETE_ACTION,
    SYNTHETIC_JOB,
    SYNTHETIC_REQUISITION,
    delivery_report,
    failures_report,
    metric_window,
    percentile,
    synthetic_probe,
)
from functions.messages.models.message import Channel, Direction, HistoryEntry, MessageState, Status
from shared import clock
from shared.audit import Outcome
from shared.auth import Actor, Role
from shared.errors import BadRequest, Forbidden
from shared.permissions import POLICY, Permission
from tests.fakes import FakeAuditLog

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
RECRUITER = Actor.user("acme", "u-1", frozenset({Role.RECRUITER}))


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.freeze(NOW)
    yield
    clock.freeze(None)


def msg(
    message_id: str,
    *events: tuple[Status, float],
    channel: Channel = Channel.EMAIL,
    direction: Direction = Direction.OUTBOUND,
    tenant: str = "acme",
    candidate: str | None = "cand-1",
    requisition: str | None = "req-1",
    thread: str | None = None,
    provider: str = "ats",
    key: str | None = None,
    permanent: bool = False,
    start: datetime = T0,
) -> MessageState:
    """A stored message whose history is `events` ((status, seconds after `start`)), all reported by `provider`."""
    history = [
        HistoryEntry(
            event_id=f"{message_id}-{i}",
            status=status,
            at=start + timedelta(seconds=seconds),
            provider=provider,
            provider_event=status.value,
            permanent=permanent and status.failure,
        )
        for i, (status, seconds) in enumerate(events)
    ]
    return MessageState(
        tenant=tenant,
        message_id=message_id,
        channel=channel,
        direction=direction,
        provider=provider,
        message_key=key or message_id,
        status=current_status(history),
        first_at=min(e.at for e in history),
        last_at=max(e.at for e in history),
        history=history,
        thread_id=thread,
        candidate_id=candidate,
        requisition_id=requisition,
        version=1,
    )


class FakeStore:
    """MessageStore in memory, with DynamoDB's index semantics (partition, `at` range, order, pages)."""

    def __init__(self, messages: list[MessageState] | None = None) -> None:
        self.messages: dict[tuple[str, str], MessageState] = {(m.tenant, m.message_id): m for m in messages or []}
        self.queries: list[IndexQuery] = []

    def query(self, tenant: str, query: IndexQuery, *, limit: int, cursor: str | None, filters: dict[str, str]) -> Page:
        self.queries.append(query)
        partition_attr, _ = INDEXES[query.index]
        items = [(to_item(m), m) for m in self.messages.values()]
        chosen = [
            (item["at"]["S"], m)
            for item, m in items
            if item.get(partition_attr, {}).get("S") == query.partition
            and (query.since is None or item["at"]["S"] >= query.since)
            and (query.until is None or item["at"]["S"] <= query.until + "\uffff")
            and all(item.get(a, {}).get("S") == v for a, v in filters.items())
        ]
        chosen.sort(key=lambda pair: pair[0], reverse=query.newest_first)
        start = int(cursor or 0)
        page = [m for _, m in chosen[start : start + limit]]
        more = start + limit < len(chosen)
        return Page(page, str(start + limit) if more else None, len(page))

    def get(self, tenant: str, message_id: str) -> MessageState | None:
        return self.messages.get((tenant, message_id))

    def load(self, keys: Any) -> Any:  # the MessageStore port; reports never load
        raise AssertionError("not used")

    def save(self, state: MessageState) -> MessageState:
        raise AssertionError("not used")

    def put_terms(self, state: MessageState, digests: Any) -> None:
        raise AssertionError("not used")


# --- statistics ------------------------------------------------------------------------------------------


def test_percentiles_interpolate_between_closest_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert percentile(list(map(float, range(1, 101))), 0.9) == pytest.approx(90.1)


# --- the delivery report ---------------------------------------------------------------------------------


def candidate_world() -> FakeStore:
    return FakeStore(
        [
            # delivered after 10 s, opened 60 s later, answered 120 s after delivery by a tagged reply
            msg("m1", (Status.SENT, 0), (Status.DELIVERED, 10), (Status.OPENED, 70), thread="th1"),
            msg("r1", (Status.REPLIED, 130), direction=Direction.INBOUND, thread="th1"),
            # answered 70 s after delivery by a reply that carries no candidate id (found through its thread)
            msg("m2", (Status.SENT, 0), (Status.DELIVERED, 30), thread="th2"),
            msg("r2", (Status.REPLIED, 100), direction=Direction.INBOUND, thread="th2", candidate=None),
            msg("m3", (Status.SENT, 0), (Status.DELIVERED, 5), channel=Channel.SMS),
            msg("m4", (Status.SENT, 0), (Status.BOUNCED, 20), permanent=True),
            msg("m5", (Status.DELIVERED, 50), channel=Channel.IN_APP, direction=Direction.INBOUND),
            # another tenant's message of a candidate with the same id is never counted
            msg("g1", (Status.SENT, 0), (Status.DELIVERED, 1), tenant="globex"),
        ]
    )


def test_the_delivery_report_of_a_candidate_has_timelines_and_a_response_rate() -> None:
    audit = FakeAuditLog()
    report = delivery_report(
        RECRUITER,
        candidate_id="cand-1",
        requisition_id=None,
        since=None,
        until=None,
        store=candidate_world(),
        audit=audit,
        request_id="r-1",
    )
    total = report.total
    assert (total.outbound, total.inbound, total.delivered, total.failed, total.answered) == (4, 2, 3, 1, 2)
    assert total.response_rate == pytest.approx(0.6667)
    assert (total.sent_to_delivered.samples, total.sent_to_delivered.median_seconds) == (3, 10.0)
    assert total.sent_to_delivered.p90_seconds == pytest.approx(26.0)
    assert (total.delivered_to_opened.samples, total.delivered_to_opened.median_seconds) == (1, 60.0)
    assert total.delivered_to_replied.median_seconds == 95.0
    assert total.delivered_to_replied.p90_seconds == pytest.approx(115.0)
    assert report.inbound_replies == 2
    by_channel = {c.channel: c for c in report.channels}
    assert list(by_channel) == [Channel.EMAIL, Channel.SMS, Channel.IN_APP]
    email, sms = by_channel[Channel.EMAIL], by_channel[Channel.SMS]
    assert (email.outbound, email.inbound, email.delivered, email.failed, email.answered) == (3, 1, 2, 1, 2)
    assert email.response_rate == 1.0 and sms.response_rate == 0.0
    assert by_channel[Channel.IN_APP].inbound == 1 and by_channel[Channel.IN_APP].response_rate is None
    assert report.complete and report.replies_complete and report.messages_read == 6
    (entry,) = audit.entries
    assert (entry.action, entry.outcome) == (Permission.READ_MESSAGES.value, Outcome.ALLOWED)
    assert entry.resource == "/v1/message-reports/delivery?candidate_id=cand-1"


def test_the_delivery_report_of_a_requisition_reads_its_index_over_the_range() -> None:
    store = candidate_world()
    store.messages[("acme", "late")] = msg("late", (Status.SENT, 0), start=T0 + timedelta(days=3))
    report = delivery_report(
        RECRUITER,
        candidate_id=None,
        requisition_id="req-1",
        since=T0,
        until=T0 + timedelta(days=1),
        store=store,
        audit=FakeAuditLog(),
        request_id="r-1",
    )
    assert report.scope == "requisition" and report.total.outbound == 4  # "late" is outside the range
    assert store.queries[0].index == "ByRequisition" and store.queries[0].partition == "acme#req-1"
    assert not store.queries[0].newest_first


def test_a_report_stops_at_its_bound_and_says_where(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "MAX_MESSAGES", 3)
    monkeypatch.setattr(reports, "PAGE_SIZE", 2)
    store = FakeStore([msg(f"m{i}", (Status.DELIVERED, i * 60)) for i in range(7)])
    report = delivery_report(
        RECRUITER,
        candidate_id="cand-1",
        requisition_id=None,
        since=None,
        until=None,
        store=store,
        audit=FakeAuditLog(),
        request_id="r-1",
    )
    assert (report.messages_read, report.complete, report.limit) == (3, False, 3)
    assert report.covered_until == T0 + timedelta(seconds=120)


def test_thread_look_ups_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "MAX_THREAD_LOOKUPS", 2)
    store = FakeStore([msg(f"m{i}", (Status.DELIVERED, 0), thread=f"t{i}") for i in range(3)])
    report = delivery_report(
        RECRUITER,
        candidate_id="cand-1",
        requisition_id=None,
        since=None,
        until=None,
        store=store,
        audit=FakeAuditLog(),
        request_id="r-1",
    )
    assert not report.replies_complete
    assert [q.index for q in store.queries].count("ByThread") == 2


@pytest.mark.parametrize(
    ("candidate", "requisition", "since", "until"),
    [
        (None, None, None, None),
        ("cand-1", "req-1", None, None),
        ("cand#1", None, None, None),
        ("cand-1", None, T0 + timedelta(days=1), T0),
        ("cand-1", None, T0.replace(tzinfo=None), None),  # a naive time is refused
    ],
)
def test_a_delivery_report_needs_one_well_formed_subject_and_range(
    candidate: str | None, requisition: str | None, since: datetime | None, until: datetime | None
) -> None:
    audit = FakeAuditLog()
    with pytest.raises(BadRequest):
        delivery_report(
            RECRUITER,
            candidate_id=candidate,
            requisition_id=requisition,
            since=since,
            until=until,
            store=FakeStore(),
            audit=audit,
            request_id="r-1",
        )
    assert audit.entries == []


def test_a_reader_without_messages_read_is_refused_and_audited() -> None:
    audit = FakeAuditLog()
    with pytest.raises(Forbidden):
        delivery_report(
            Actor.user("acme", "u-2", frozenset({Role.FINANCE_APPROVER})),
            candidate_id="cand-1",
            requisition_id=None,
            since=None,
            until=None,
            store=candidate_world(),
            audit=audit,
            request_id="r-1",
        )
    assert [e.outcome for e in audit.entries] == [Outcome.DENIED]


# --- the failures report ---------------------------------------------------------------------------------


@dataclass
class FakeCounters:
    values: dict[str, float] | None
    asked: list[tuple[datetime, datetime, int]] = field(default_factory=list)

    def sums(self, names: Any, *, since: datetime, until: datetime, period_seconds: int) -> dict[str, float] | None:
        self.asked.append((since, until, period_seconds))
        return self.values


def failures_world() -> FakeStore:
    sg = "sendgrid"
    return FakeStore(
        [
            msg("e1", (Status.SENT, 0), (Status.DELIVERED, 5), provider=sg),
            msg("e2", (Status.SENT, 0), (Status.DELAYED, 60), (Status.DELIVERED, 600), provider=sg),
            msg("e3", (Status.SENT, 0), (Status.BOUNCED, 10), permanent=True, provider=sg),
            msg("e4", (Status.SENT, 0), (Status.OPENED, 10), provider=sg),
            msg("e5", (Status.DELIVERED, 0)),  # recorded by the ATS, no provider reported on it
            msg("e6", (Status.DELIVERED, 0), direction=Direction.INBOUND, provider=sg),  # inbound: not a delivery
            msg("s1", (Status.SENT, 0), (Status.DELIVERED, 3), channel=Channel.SMS, provider="twilio"),
            msg("s2", (Status.SENT, 0), (Status.UNDELIVERED, 3), channel=Channel.SMS, provider="twilio"),
            msg("old", (Status.SENT, 0), (Status.BOUNCED, 1), start=NOW - timedelta(days=40)),
        ]
    )


def test_failure_and_bounce_rates_per_channel_and_provider() -> None:
    audit = FakeAuditLog()
    report = failures_report(
        RECRUITER, since=None, until=None, channel=None, store=failures_world(), audit=audit, request_id="r-1"
    )
    assert (report.since, report.until) == (NOW - timedelta(days=30), NOW)  # the default range
    rows = {(r.channel, r.provider): r for r in report.rows}
    assert list(rows) == [(Channel.EMAIL, "ats"), (Channel.EMAIL, "sendgrid"), (Channel.SMS, "twilio")]
    sendgrid = rows[(Channel.EMAIL, "sendgrid")]
    assert (sendgrid.outbound, sendgrid.delivered, sendgrid.failed, sendgrid.bounced) == (4, 3, 1, 1)
    assert (sendgrid.permanent_failures, sendgrid.delayed) == (1, 1)
    assert (sendgrid.failure_rate, sendgrid.bounce_rate) == (0.25, 0.25)
    twilio = rows[(Channel.SMS, "twilio")]
    assert (twilio.failure_rate, twilio.bounce_rate) == (0.5, 0.0)
    assert [c.channel for c in report.coverage] == list(Channel) and report.complete
    assert report.capture is None
    assert audit.entries[0].resource == "/v1/message-reports/failures"


def test_a_failures_report_of_one_channel_reads_that_channel_only() -> None:
    store = failures_world()
    report = failures_report(
        RECRUITER, since=None, until=None, channel=Channel.SMS, store=store, audit=FakeAuditLog(), request_id="r"
    )
    assert [q.partition for q in store.queries] == ["acme#sms"]
    assert [(r.channel, r.provider) for r in report.rows] == [(Channel.SMS, "twilio")]


def test_an_ats_record_sent_through_a_provider_counts_for_that_provider() -> None:
    joined = msg("j1", (Status.SENT, 0), (Status.BOUNCED, 10))
    history = [joined.history[0], replace(joined.history[1], provider="ses")]
    store = FakeStore([replace(joined, history=history)])
    report = failures_report(
        RECRUITER, since=None, until=None, channel=Channel.EMAIL, store=store, audit=FakeAuditLog(), request_id="r"
    )
    assert [(r.provider, r.bounced) for r in report.rows] == [("ses", 1)]


def test_the_capture_rate_comes_from_the_counters_over_whole_periods() -> None:
    counters = FakeCounters({"MessageEventsReceived": 200.0, "MessageEventsStored": 199.0})
    since = NOW - timedelta(days=2, seconds=30)
    report = failures_report(
        RECRUITER,
        since=since,
        until=NOW - timedelta(seconds=10),
        channel=Channel.SMS,
        store=FakeStore(),
        audit=FakeAuditLog(),
        request_id="r",
        counters=counters,
    )
    assert report.capture is not None
    assert (report.capture.received, report.capture.stored, report.capture.success_rate) == (200.0, 199.0, 0.995)
    assert counters.asked == [(NOW - timedelta(days=2, seconds=60), NOW, 60)]


def test_unreadable_or_empty_counters_leave_no_rate() -> None:
    for values, expected in ((None, None), ({}, "no rate")):
        report = failures_report(
            RECRUITER,
            since=None,
            until=None,
            channel=Channel.SMS,
            store=FakeStore(),
            audit=FakeAuditLog(),
            request_id="r",
            counters=FakeCounters(values),
        )
        if expected is None:
            assert report.capture is None
        else:
            assert report.capture is not None and report.capture.success_rate is None


@pytest.mark.parametrize(
    ("age", "period"), [(timedelta(days=1), 60), (timedelta(days=20), 300), (timedelta(days=200), 3600)]
)
def test_the_metric_period_is_the_finest_cloudwatch_still_keeps(age: timedelta, period: int) -> None:
    since = NOW - age + timedelta(seconds=17)
    start, end, chosen = metric_window(since, NOW - timedelta(seconds=1), NOW)
    assert chosen == period
    assert start <= since and start.timestamp() % period == 0 and end.timestamp() % period == 0 and end >= NOW


@pytest.mark.parametrize(
    ("since", "until"), [(NOW - timedelta(days=367), NOW), (NOW + timedelta(days=1), None)], ids=["long", "ahead"]
)
def test_a_failures_report_covers_at_most_366_days_up_to_until(since: datetime, until: datetime | None) -> None:
    with pytest.raises(BadRequest):
        failures_report(
            RECRUITER,
            since=since,
            until=until,
            channel=None,
            store=FakeStore(),
            audit=FakeAuditLog(),
            request_id="r",
        )


# --- the synthetic probe ---------------------------------------------------------------------------------


@pytest.fixture
def synthetic_granted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The permission row the lead adds: the probe's job records messages."""
    grant = POLICY[Permission.RECORD_MESSAGES]
    monkeypatch.setitem(
        POLICY, Permission.RECORD_MESSAGES, replace(grant, jobs=grant.jobs | frozenset({SYNTHETIC_JOB}))
    )


class ProbeWorld:
    """The API queue, the ingest consumer and the table, in memory: what is queued is stored on the next sleep
    (after `lag` sleeps), the way the consumer drains the queue while the probe polls."""

    def __init__(self, *, lag: int = 1, corrupt: bool = False) -> None:
        self.store = FakeStore()
        self.queued: list[Any] = []
        self.deleted: list[str] = []
        self.slept: list[float] = []
        self.now = 0.0
        self.lag, self.corrupt = lag, corrupt

    # DeliveryQueue
    def put(self, delivery: Any) -> None:
        self.queued.append(delivery)

    # SyntheticStore
    def get(self, tenant: str, message_id: str) -> MessageState | None:
        return self.store.get(tenant, message_id)

    def query(self, tenant: str, query: IndexQuery, **kw: Any) -> Page:
        return self.store.query(tenant, query, **kw)

    def delete_synthetic(self, tenant: str, message_id: str) -> bool:
        found = self.store.messages.get((tenant, message_id))
        if found is None or not found.message_key.startswith("synthetic-"):
            return False
        del self.store.messages[(tenant, message_id)]
        self.deleted.append(message_id)
        return True

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if len(self.slept) >= self.lag:
            self._ingest()

    def monotonic(self) -> float:
        return self.now

    def _ingest(self) -> None:
        from functions.messages.logic.ingest import ingest
        from functions.messages.logic.record import events_of_record
        from functions.messages.models.policy import MessagePolicy

        class Store(FakeStore):
            def load(inner, keys: Any) -> Any:
                return {k: self.store.messages[k] for k in keys if k in self.store.messages}

            def save(inner, state: MessageState) -> MessageState:
                stored = replace(state, version=state.version + 1)
                if self.corrupt:
                    stored = replace(stored, channel=Channel.SMS)
                self.store.messages[(state.tenant, state.message_id)] = stored
                return stored

        incoming = []
        for delivery in self.queued:
            from functions.messages.logic.ingest import Incoming

            incoming += [
                Incoming(delivery.tenant, e) for e in events_of_record(delivery.tenant, delivery.body, received_at=NOW)
            ]
        self.queued.clear()
        if incoming:
            ingest(
                incoming,
                store=Store(),
                policy_of=lambda tenant: MessagePolicy(tenant),
                sealer=None,  # type: ignore[arg-type]
                indexer=None,  # type: ignore[arg-type]
                publisher=type("P", (), {"publish": lambda self, events: None})(),
            )


def probe(world: ProbeWorld, audit: FakeAuditLog, **kw: Any) -> reports.ProbeResult:
    return synthetic_probe(
        "synthetic-probe",
        queue=world,
        store=world,
        audit=audit,
        request_id="lambda-req-1",
        sleep=world.sleep,
        monotonic=world.monotonic,
        **kw,
    )


@pytest.mark.usefixtures("synthetic_granted")
def test_the_probe_records_finds_checks_and_deletes_its_message() -> None:
    world, audit = ProbeWorld(lag=3), FakeAuditLog()
    result = probe(world, audit)
    assert result.succeeded and result.problem is None and result.leftovers_removed == 0
    assert result.seconds_to_store == pytest.approx(0.25 + 0.5 + 1.0)
    assert world.deleted == [result.message_id] and world.store.messages == {}
    delivery = audit.entries[0]
    assert [(e.actor, e.action, e.outcome) for e in audit.entries] == [
        (f"system:{SYNTHETIC_JOB}", Permission.RECORD_MESSAGES.value, Outcome.ALLOWED),
        (f"system:{SYNTHETIC_JOB}", SYNTHETIC_DELETE_ACTION, Outcome.ALLOWED),
    ]
    assert delivery.tenant == "synthetic-probe"


@pytest.mark.usefixtures("synthetic_granted")
def test_a_message_not_stored_in_time_fails_the_probe_and_is_removed_by_the_next_run() -> None:
    world, audit = ProbeWorld(lag=10_000), FakeAuditLog()
    result = probe(world, audit, wait_seconds=5.0)
    assert not result.succeeded and result.problem == "not stored within 5 s"
    assert sum(world.slept) <= 5.0
    world._ingest()  # the consumer stores it after the probe gave up
    assert len(world.store.messages) == 1

    world.lag = 1
    again = probe(world, audit)
    assert again.succeeded and again.leftovers_removed == 1 and world.store.messages == {}


@pytest.mark.usefixtures("synthetic_granted")
def test_a_stored_message_that_differs_fails_the_probe() -> None:
    world = ProbeWorld(corrupt=True)
    result = probe(world, FakeAuditLog())
    assert not result.succeeded and result.problem == "stored message differs in channel"
    assert world.store.messages == {}  # deleted all the same


def test_the_probe_records_only_because_its_job_holds_the_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SYNTHETIC_JOB in POLICY[Permission.RECORD_MESSAGES].jobs  # the row in shared/permissions.py
    grant = POLICY[Permission.RECORD_MESSAGES]
    monkeypatch.setitem(POLICY, Permission.RECORD_MESSAGES, replace(grant, jobs=frozenset()))
    result = probe(ProbeWorld(), FakeAuditLog())
    assert not result.succeeded and result.problem is not None and result.problem.startswith("not recorded")


@pytest.mark.usefixtures("synthetic_granted")
def test_the_probe_never_deletes_a_message_that_is_not_synthetic() -> None:
    world = ProbeWorld()
    real = msg("real", (Status.DELIVERED, 0), tenant="synthetic-probe", candidate=SYNTHETIC_CANDIDATE)
    world.store.messages[("synthetic-probe", "real")] = real
    result = probe(world, FakeAuditLog())
    assert result.leftovers_removed == 0 and ("synthetic-probe", "real") in world.store.messages
    assert SYNTHETIC_REQUISITION == "synthetic-requisition"


# --- the drill's comparison ------------------------------------------------------------------------------


def _drill() -> Any:
    from functions.messages import drill

    return drill


T = NOW
SETTLE = timedelta(minutes=5)


def hold(hold_id: str, *, placed: datetime, released: datetime | None = None, held: int = 0, done: bool = True) -> Any:
    return _drill().HoldState(hold_id, "candidate", "cand-1", placed, released, held, done)


def policy(version: int, at: datetime) -> Any:
    return _drill().PolicyState(version, "full", at, "user:u-1")


def state(**kw: Any) -> Any:
    return _drill().TableState(**kw)


def kinds(mismatches: list[Any]) -> list[tuple[str, str]]:
    return [(m.kind, m.subject) for m in mismatches]


def test_a_faithful_restore_has_no_mismatch() -> None:
    d = _drill()
    facts = {"acme": d.AuditFacts([T - timedelta(hours=2)], {"h1": T - timedelta(hours=1)}, {})}
    restored = {
        "acme": state(
            policy=policy(1, T - timedelta(hours=2)), holds={"h1": hold("h1", placed=T - timedelta(hours=1), held=2)}
        )
    }
    live = {
        "acme": state(
            policy=policy(2, T + timedelta(hours=1)), holds={"h1": hold("h1", placed=T - timedelta(hours=1), held=2)}
        )
    }
    facts["acme"].policy_changes.append(T + timedelta(hours=1))  # the live version 2 was audited after T
    assert d.compare(T, SETTLE, facts, restored, live, {("acme", "h1"): 2}) == []


def test_policy_versions_are_bounded_by_the_audit_trail_both_ways() -> None:
    d = _drill()
    one_change = {"acme": d.AuditFacts([T - timedelta(hours=2)])}
    live = {"acme": state(policy=policy(1, T - timedelta(hours=2)))}
    lost = d.compare(T, SETTLE, one_change, {"acme": state()}, live, {})
    assert kinds(lost) == [("policy_change_missing", "message-policy")]
    unaudited = d.compare(T, SETTLE, {}, {"acme": state(policy=policy(1, T - timedelta(hours=2)))}, live, {})
    assert kinds(unaudited) == [("policy_unaudited", "message-policy")]
    later = d.compare(T, SETTLE, one_change, {"acme": state(policy=policy(1, T + timedelta(hours=1)))}, live, {})
    assert ("policy_after_restore_time", "message-policy") in kinds(later)


def test_a_change_audited_just_before_the_restore_time_may_be_missing() -> None:
    d = _drill()
    facts = {"acme": d.AuditFacts([T - timedelta(seconds=20)])}
    live = {"acme": state(policy=policy(1, T + timedelta(seconds=1)))}  # written just after T
    assert d.compare(T, SETTLE, facts, {"acme": state()}, live, {}) == []


def test_holds_are_checked_against_the_trail_and_the_live_table() -> None:
    d = _drill()
    placed = T - timedelta(hours=1)
    live = {
        "acme": state(
            holds={
                "kept": hold("kept", placed=placed),
                "lost": hold("lost", placed=placed),
                "freed": hold("freed", placed=placed, released=T - timedelta(minutes=30)),
                "fresh": hold("fresh", placed=T - timedelta(seconds=30)),  # inside the margin: may be missing
            }
        )
    }
    restored = {
        "acme": state(
            holds={
                "kept": hold("kept", placed=placed),
                "freed": hold("freed", placed=placed),  # its release is missing
                "ghost": hold("ghost", placed=placed),  # never audited
                "future": hold("future", placed=T + timedelta(hours=1)),
            }
        )
    }
    facts = {
        "acme": d.AuditFacts(
            [],
            {"kept": placed, "lost": placed, "freed": placed, "future": T + timedelta(hours=1)},
            {"freed": T - timedelta(minutes=30)},
        )
    }
    assert sorted(kinds(d.compare(T, SETTLE, facts, restored, live, {}))) == [
        ("hold_after_restore_time", "future"),
        ("hold_missing", "lost"),
        ("hold_unaudited", "future"),
        ("hold_unaudited", "ghost"),
        ("release_missing", "freed"),
    ]


def test_a_release_is_checked_like_a_placement() -> None:
    d = _drill()
    placed = T - timedelta(hours=2)
    restored = {"acme": state(holds={"h": hold("h", placed=placed, released=T + timedelta(minutes=1))})}
    facts = {"acme": d.AuditFacts([], {"h": placed}, {})}
    assert sorted(kinds(d.compare(T, SETTLE, facts, restored, {}, {}))) == [
        ("release_after_restore_time", "h"),
        ("release_unaudited", "h"),
    ]


def test_an_active_hold_must_carry_its_marks_once_its_fan_out_went_through() -> None:
    d = _drill()
    placed = T - timedelta(hours=1)
    facts = {"acme": d.AuditFacts([], {"done": placed, "going": placed}, {})}
    restored = {
        "acme": state(
            holds={
                "done": hold("done", placed=placed, held=3),
                "going": hold("going", placed=placed, held=3, done=False),
            }
        )
    }
    found = d.compare(T, SETTLE, facts, restored, {}, {("acme", "done"): 2, ("acme", "going"): 1})
    assert kinds(found) == [("hold_marks_missing", "done")]


def test_the_hold_resources_of_the_trail_are_parsed() -> None:
    pattern = _drill()._HOLD_RESOURCE
    assert pattern.match("message-hold/case:2026:7:place").groupdict() == {"id": "case:2026:7", "verb": "place"}
    assert pattern.match("message-hold/h1:release")["verb"] == "release"
    assert pattern.match("message-hold/h1:read") is None and pattern.match("legal-hold/h1") is None
