"""Anomalous-access detection (issue 13 §7) without AWS: what counts against whom, windows, one alert per window,
a failed publication given back, failures counted and never raised into linking, the policy's validation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from functions.audit.dal.anomaly import is_counter_key
from functions.audit.handlers import linker
from functions.audit.logic.alert_policy import check_policy
from functions.audit.logic.anomaly import (
    AnomalyDetector,
    DetectionReport,
    Observation,
    PolicyCache,
    classify,
    identifier,
)
from functions.audit.models.alert_policy import DEFAULT_POLICY, AlertPolicy, StoredAlertPolicy, Threshold
from functions.audit.models.anomaly import AlertKind, Window, WindowTotal, window_start
from shared.audit import AuditEntry, Outcome, inbox_item
from shared.errors import BadRequest
from shared.events import DomainEvent
from tests.conftest import make_lambda_context

T = datetime(2026, 11, 27, 9, 7, 30, tzinfo=UTC)
TIGHT = AlertPolicy(
    reads=Threshold(limit=3, window_minutes=15),
    exports=Threshold(limit=2, window_minutes=60),
    auth_failures=Threshold(limit=2, window_minutes=5),
)


def seen(
    n: int, *, actor: str = "user:u-1", action: str = "messages:read", outcome: str = "allowed", **kw: str
) -> Observation:
    fields = {"tenant": "acme", "resource": f"message/m-{n}", "request_id": f"req-{n}", **kw}
    return Observation(
        actor=actor,
        action=action,
        outcome=outcome,
        at=T,
        shard=0,
        seq=n,
        hash_hex="ab" * 32,
        **fields,
    )


@dataclass
class FakeCounters:
    counts: dict[Window, int] = field(default_factory=dict)
    claimed: dict[Window, str] = field(default_factory=dict)
    adds: int = 0

    def add(self, window: Window, count: int, now: datetime) -> WindowTotal:
        self.adds += 1
        self.counts[window] = self.counts.get(window, 0) + count
        return WindowTotal(self.counts[window], window in self.claimed)

    def claim(self, window: Window, alert_id: str, now: datetime) -> bool:
        if window in self.claimed:
            return False
        self.claimed[window] = alert_id
        return True

    def release(self, window: Window, alert_id: str) -> None:
        if self.claimed.get(window) == alert_id:
            del self.claimed[window]


@dataclass
class FakePolicies:
    policies: dict[str, AlertPolicy] = field(default_factory=dict)
    reads: int = 0

    def current(self, tenant: str) -> StoredAlertPolicy | None:
        self.reads += 1
        policy = self.policies.get(tenant)
        return StoredAlertPolicy(tenant, policy, 1) if policy else None


@dataclass
class FakeBus:
    published: list[DomainEvent] = field(default_factory=list)
    fail: bool = False

    def publish(self, events: Sequence[DomainEvent]) -> None:
        if self.fail:
            raise RuntimeError("bus down")
        self.published.extend(events)


def detector(policies: dict[str, AlertPolicy] | None = None) -> tuple[AnomalyDetector, FakeCounters, FakeBus]:
    counters, bus = FakeCounters(), FakeBus()
    found = AnomalyDetector(counters, FakePolicies(policies or {"acme": TIGHT}), bus, cache=PolicyCache())
    return found, counters, bus


# ---- what counts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observation", "expected"),
    [
        (seen(1), (AlertKind.UNUSUAL_READS, "user:u-1")),
        (
            seen(1, actor="integration:c-1", action="retention:records:read"),
            (AlertKind.UNUSUAL_READS, "integration:c-1"),
        ),
        (seen(1, action="messages:export"), (AlertKind.UNUSUAL_EXPORTS, "user:u-1")),
        (seen(1, outcome="denied"), (AlertKind.REPEATED_AUTH_FAILURES, "user:u-1")),
        (
            seen(1, outcome="denied", actor="anonymous", tenant="_gateway", source_ip="192.0.2.1"),
            (AlertKind.REPEATED_AUTH_FAILURES, "ip:192.0.2.1"),
        ),
        (seen(1, action="identity:read"), None),  # one's own identity
        (seen(1, actor="system:retention-sweep"), None),  # our own jobs read by design
        (seen(1, action="messages:record"), None),  # a change, not a read
        (seen(1, outcome="failed"), None),
    ],
)
def test_each_entry_counts_against_one_subject_or_none(observation: Observation, expected: tuple | None) -> None:
    subject = classify(observation)

    assert (None if subject is None else (subject.kind, subject.key)) == expected


def test_windows_are_fixed_from_midnight_utc() -> None:
    assert window_start(T, 15) == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert window_start(T, 5) == datetime(2026, 11, 27, 9, 5, tzinfo=UTC)
    assert window_start(T, 1440) == datetime(2026, 11, 27, tzinfo=UTC)


def test_labels_that_are_not_event_identifiers_get_a_stable_stand_in() -> None:
    assert identifier("user:7c1e-42") == "user:7c1e-42"
    assert identifier("user:a b") == identifier("user:a b") != "user:a b"
    assert identifier("user:a b").startswith("x-")


# ---- alerts -----------------------------------------------------------------------------------------------------


def test_a_threshold_reached_raises_one_alert_per_window_and_batches_add_once_per_window() -> None:
    found, counters, bus = detector()

    first = found.observe([seen(1), seen(1), seen(2)], T)  # m-1 twice: 2 distinct records
    second = found.observe([seen(3), seen(4, actor="user:u-2")], T)
    third = found.observe([seen(5)], T)

    assert (first.alerts, len(second.alerts), third.alerts) == ([], 1, [])
    (alert,) = bus.published
    assert alert.model_dump(include={"kind", "actor", "count", "threshold", "distinct_resources"}) == {
        "kind": AlertKind.UNUSUAL_READS,
        "actor": "user:u-1",
        "count": 3,
        "threshold": 3,
        "distinct_resources": 1,
    }
    assert counters.adds == 4  # one per (actor, window) per batch, not one per entry


def test_each_tenant_is_judged_by_its_own_policy_read_once_per_batch() -> None:
    policies = FakePolicies({"acme": TIGHT})
    found = AnomalyDetector(FakeCounters(), policies, bus := FakeBus(), cache=PolicyCache())

    found.observe([seen(n) for n in range(4)] + [seen(n, tenant="globex") for n in range(4)], T)

    assert [a.tenant for a in bus.published] == ["acme"]  # globex has the defaults (500)
    assert policies.reads == 2


def test_the_policy_cache_reads_again_after_its_time_to_live() -> None:
    now = [0.0]
    policies = FakePolicies({"acme": TIGHT})
    cache = PolicyCache(ttl_seconds=60, monotonic=lambda: now[0])

    cache.policy("acme", policies), cache.policy("acme", policies)
    now[0] = 61
    cache.policy("acme", policies)

    assert policies.reads == 2
    assert cache.policy("_gateway", policies) is DEFAULT_POLICY  # nobody sets the gateway's


def test_a_disabled_policy_watches_nothing() -> None:
    found, counters, bus = detector({"acme": TIGHT.model_copy(update={"enabled": False})})

    found.observe([seen(n) for n in range(5)], T)

    assert (bus.published, counters.adds) == ([], 0)


def test_a_failed_publication_gives_the_claim_back_and_is_counted_not_raised() -> None:
    found, counters, bus = detector()
    bus.fail = True

    report = found.observe([seen(n) for n in range(3)], T)

    assert (report.errors, report.alerts, counters.claimed) == (1, [], {})
    bus.fail = False
    assert len(found.observe([seen(9)], T).alerts) == 1


def test_a_busy_batch_counts_the_busiest_windows_and_reports_the_rest() -> None:
    found, counters, bus = detector()
    found.max_windows = 2
    batch = [seen(n, actor="user:heavy") for n in range(3)] + [seen(n, actor=f"user:u-{n}") for n in range(5)]

    report = found.observe(batch, T)

    assert (report.windows, report.skipped_windows, len(bus.published)) == (2, 4, 1)


def test_the_policy_needs_windows_that_divide_a_day() -> None:
    check_policy(TIGHT)
    with pytest.raises(BadRequest, match=r"reads.window_minutes \(7\)"):
        check_policy(TIGHT.model_copy(update={"reads": Threshold(limit=3, window_minutes=7)}))


# ---- in the linker ----------------------------------------------------------------------------------------------


class FailingDetector(AnomalyDetector):
    def __init__(self) -> None:
        self.seen: list[Observation] = []

    def observe(self, seen: Iterable[Observation], now: datetime) -> DetectionReport:
        self.seen.extend(seen)
        raise RuntimeError("detector broken")


def insert_record(tenant: str, *resources: str) -> dict[str, object]:
    entries = [
        AuditEntry(
            tenant=tenant, actor="user:u1", action="messages:read", resource=r, outcome=Outcome.ALLOWED, request_id="q"
        )
        for r in resources
    ]
    item = inbox_item(tenant, entries, T)
    return {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": item["pk"], "sk": item["sk"]}, "NewImage": item}}


def test_a_broken_detector_never_stops_linking_and_counter_updates_are_not_tampering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.observability import metrics

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setattr(metrics, "namespace", "AtsCompliance")
    from tests.unit.test_audit_linker import MemoryChain  # the linker tests' own fake

    store, broken = MemoryChain(), FailingDetector()
    counter_update = {
        "eventName": "MODIFY",
        "dynamodb": {"Keys": {"pk": {"S": "T#acme#AUDIT#ANOMALY#15#20261127T0900"}, "sk": {"S": "unusual_reads#u"}}},
    }
    record = insert_record("acme", "m-1", "m-2")
    event = {"Records": [record, counter_update]}

    result = linker.lambda_handler(event, make_lambda_context("Linker"), store=store, detector=broken)
    again = linker.lambda_handler({"Records": [record]}, make_lambda_context("Linker"), store=store, detector=broken)

    assert (result["linked_entries"], result["changes_not_inserts"], result["alerts_raised"]) == (2, 0, 0)
    assert again["already_linked"] == 1
    # Only what an invocation linked is observed, with its place in the chain: a redelivery is not counted again.
    assert [(o.resource, o.seq) for o in broken.seen] == [("m-1", 1), ("m-2", 2)]


def test_only_the_detectors_counters_are_passed_over() -> None:
    assert is_counter_key("T#acme#AUDIT#ANOMALY#15#20261127T0900")
    assert not is_counter_key("T#acme#AUDIT#3") and not is_counter_key("T#acme#AUDITIN#3")
    assert not is_counter_key("T#acme#AUDIT#DIGEST") and not is_counter_key("T#acme#AUDIT#ALERTPOLICY")


def test_the_linker_passes_over_exactly_the_counters_keys() -> None:
    from functions.audit.dal.anomaly import is_counter_key
    from functions.audit.handlers import linker

    for pk in ("T#acme#AUDIT#ANOMALY#15#2026-11-27T10:00", "T#acme#AUDIT#3", "T#acme#AUDITIN#2", "AUDIT#TENANTS", ""):
        assert linker._is_counter_key(pk) is is_counter_key(pk), pk
