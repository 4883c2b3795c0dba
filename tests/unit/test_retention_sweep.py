"""The daily sweep's use cases with in-memory fakes, and its state machine's shape (ASL rendered by CDK)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.retention.dal.sweep import (
    AlreadyCommitted,
    Archive,
    CommitOutcome,
    Committed,
    Decrement,
    Delete,
    DryDecrement,
    ForgetPerson,
    Guard,
    PageMarker,
    Record,
    RecordKind,
    Rejected,
    Remove,
    RunTotals,
    ShredKey,
    Write,
)
from functions.retention.logic.sweep import (
    TRANSACTION_LIMIT,
    Phase,
    SweepState,
    report_sweep,
    run_id_for,
    start_sweep,
    sweep_page,
)
from functions.retention.models.entities import DueKind, RetentionPolicy
from shared import clock
from tests.fakes import FakeAuditLog

NOW = datetime(2026, 10, 15, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock() -> Any:
    clock.freeze(NOW)
    yield
    clock.freeze(None)


@dataclass(frozen=True)
class PersonRefs:
    refs: int
    held: bool
    exports: bool = False


@dataclass
class FakeSweepStore:
    """The SweepStore port in memory: due records per kind, partitions per vacancy, persons' refs."""

    due_records: dict[DueKind, list[Record]] = field(default_factory=dict)
    partitions: dict[str, list[Record]] = field(default_factory=dict)
    refs: dict[str, PersonRefs] = field(default_factory=dict)
    policy_: RetentionPolicy = field(default_factory=lambda: RetentionPolicy(tenant="acme", version=3))
    markers: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, RunTotals] = field(default_factory=dict)
    committed: list[list[Write]] = field(default_factory=list)
    reject_once: set[int] = field(default_factory=set)
    dry_decrements: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    shredded: list[str] = field(default_factory=list)

    def tenants(self) -> list[str]:
        return ["acme"]

    def policy(self, tenant: str) -> RetentionPolicy:
        return self.policy_

    def due(
        self, tenant: str, kind: DueKind, now: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Record], dict[str, Any] | None]:
        records = [r for r in self.due_records.get(kind, []) if r.due is not None and r.due <= now]
        start = cursor["i"] if cursor else 0
        page = records[start : start + limit]
        return page, ({"i": start + limit} if start + limit < len(records) else None)

    def children(
        self, tenant: str, vacancy_id: str, *, fingerprints_only: bool, after: str | None, limit: int
    ) -> tuple[list[Record], bool]:
        rows = [
            r
            for r in self.partitions.get(vacancy_id, [])
            if (r.kind is RecordKind.FINGERPRINT or not fingerprints_only) and (after is None or r.sk > after)
        ]
        return rows[:limit], len(rows) > limit

    def commit(self, tenant: str, page: PageMarker, writes: Sequence[Write]) -> CommitOutcome:
        if (page.run_id, page.page) in self.markers:
            return AlreadyCommitted(self.markers[page.run_id, page.page])
        failed = frozenset(i for i in self.reject_once if i < len(writes))
        if failed:
            self.reject_once.clear()
            return Rejected(failed)
        self.markers[page.run_id, page.page] = json.loads(page.body)
        self.committed.append(list(writes))
        for write in writes:
            self._apply(write)
        run = self.runs.get(page.run_id) or RunTotals(counts={})
        counts = {k: dict(v) for k, v in run.counts.items()}
        for name, value in page.counts.items():
            counts.setdefault(page.phase, {})[name] = counts.get(page.phase, {}).get(name, 0) + value
        self.runs[page.run_id] = RunTotals(
            counts=counts, pages=run.pages + 1, started_at=page.started_at, policy_version=page.policy_version
        )
        return Committed()

    def _apply(self, write: Write) -> None:
        if isinstance(write, Archive | Remove):
            kind = DueKind.ARCHIVE if isinstance(write, Archive) else DueKind.REMOVAL
            self.due_records[kind] = [r for r in self.due_records[kind] if r.vacancy_id != write.vacancy_id]
        elif isinstance(write, Delete):
            record = write.record
            for kind, records in self.due_records.items():
                self.due_records[kind] = [r for r in records if (r.vacancy_id, r.sk) != (record.vacancy_id, record.sk)]
            self.partitions[record.vacancy_id] = [
                r for r in self.partitions.get(record.vacancy_id, []) if r.sk != record.sk
            ]
        elif isinstance(write, Decrement):
            old = self.refs[write.person_id]
            self.refs[write.person_id] = PersonRefs(old.refs - write.by, old.held, old.exports)
        elif isinstance(write, DryDecrement):
            self.dry_decrements.setdefault((write.run_id, write.execution), Counter())[write.person_id] += write.by
        elif isinstance(write, ForgetPerson):
            del self.refs[write.person_id]
        elif isinstance(write, ShredKey):
            self.shredded.append(write.person_id)

    def _person(self, person_id: str) -> Record:
        person = self.refs[person_id]
        holds = ("H-1",) if person.held else ()
        return Record(RecordKind.PERSON, "", person_id, "PERSON", person_id, holds=holds, exports=person.exports)

    def marker(self, tenant: str, run_id: str, page: int) -> dict[str, Any] | None:
        return self.markers.get((run_id, page))

    def people(
        self, tenant: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Record], dict[str, Any] | None]:
        # Like LastEvaluatedKey: the next page starts after the last key read, whatever was deleted meanwhile.
        at_zero = sorted(p for p, r in self.refs.items() if r.refs <= 0 and (cursor is None or p > cursor["after"]))
        page = at_zero[:limit]
        return [self._person(p) for p in page], ({"after": page[-1]} if len(at_zero) > limit else None)

    def dry_people(
        self, tenant: str, run_id: str, execution: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Record], dict[str, Any] | None]:
        decrements = self.dry_decrements.get((run_id, execution), Counter())
        touched = sorted(decrements)
        start = cursor["i"] if cursor else 0
        page = [
            self._person(p)
            for p in touched[start : start + limit]
            if p in self.refs and self.refs[p].refs > 0 and self.refs[p].refs - decrements[p] <= 0
        ]
        return page, ({"i": start + limit} if start + limit < len(touched) else None)

    def totals(self, tenant: str, run_id: str) -> RunTotals | None:
        return self.runs.get(run_id)


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, events: Sequence[Any]) -> None:
        self.events.extend(events)


class FakeExports:
    def __init__(self) -> None:
        self.purged: list[str] = []

    def purge_people(self, tenant: str, person_ids: Sequence[str]) -> int:
        self.purged.extend(person_ids)
        return len(person_ids)


class FakeReports:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_once(self, key: str, body: bytes) -> bool:
        if key in self.objects:
            return False
        self.objects[key] = body
        return True


def vacancy(vacancy_id: str, due: str, holds: tuple[str, ...] = ()) -> Record:
    return Record(RecordKind.VACANCY, vacancy_id, vacancy_id, "VACANCY", due=due, holds=holds)


def child(vacancy_id: str, kind: RecordKind, rid: str, person: str | None = None, **extra: Any) -> Record:
    prefix = {RecordKind.APPLICATION: "APPLICATION#", RecordKind.CANDIDATE: "CANDIDATE#", RecordKind.FINGERPRINT: ""}
    return Record(kind, vacancy_id, rid, prefix.get(kind, "") + rid, person_id=person, **extra)


class Run:
    def __init__(self, store: FakeSweepStore) -> None:
        self.store, self.publisher, self.audit, self.reports = store, FakePublisher(), FakeAuditLog(), FakeReports()
        self.exports = FakeExports()
        self.executions = 0

    def __call__(self, *, dry_run: bool = False) -> dict[str, Any]:
        self.executions += 1  # each execution has its own name, as Step Functions gives it
        [state] = start_sweep(store=self.store, dry_run=dry_run, execution=f"x-{self.executions}")
        while not state.done:
            state = sweep_page(
                state,
                store=self.store,
                publisher=self.publisher,
                audit=self.audit,
                exports=self.exports,
            )
        return report_sweep(state, store=self.store, reports=self.reports)


def test_run_ids_are_per_day_and_a_dry_run_has_its_own() -> None:
    """Issue 11: a run id per tenant for the day; a dry run's under `-dry`."""
    assert run_id_for(NOW, dry_run=False) == "2026-10-15"
    assert run_id_for(NOW, dry_run=True) == "2026-10-15-dry"
    [state] = start_sweep(store=FakeSweepStore(), dry_run=False)
    assert (state.now, state.phase, state.page) == (clock.isoformat(NOW), Phase.ARCHIVE, 0)


def test_archiving_dates_the_phase_when_it_was_due_and_a_dry_run_foresees_the_cascade() -> None:
    """Seed: vacancies are archived "after they've been closed for a specified period of time"; a phase begins
    when it was due, so a vacancy whose removal is also past due is removed in the same run."""
    due = "2025-01-01T00:00:00.000Z"  # keep_archived 36 months: removal due 2028, not yet
    late = "2023-01-01T00:00:00.000Z"  # removal due 2026-01-01: already past
    store = FakeSweepStore(due_records={DueKind.ARCHIVE: [vacancy("V-1", due), vacancy("V-2", late)]})

    dry = Run(store)(dry_run=True)

    assert dry["counts"]["archive"]["vacancies"] == 2
    assert dry["counts"]["removal"]["vacancies"] == 1  # V-2 would be removed too
    assert store.committed == [[], []]  # the dry run's pages wrote only their markers and the run record
    Run(store)()
    [writes, *_] = store.committed[2:]
    assert writes[0] == Archive("V-1", due, "2028-01-01T00:00:00.000Z")


def test_held_records_are_skipped_and_counted_never_changed() -> None:
    """Issue 11: the sweep "skips anything under legal hold, and reports it"."""
    store = FakeSweepStore(
        due_records={
            DueKind.APPLICANTS: [vacancy("V-held", "2026-01-01T00:00:00.000Z", holds=("H-1",))],
            DueKind.CANDIDATE: [
                child("V-2", RecordKind.CANDIDATE, "P-1", "P-1", due="2026-01-01T00:00:00.000Z", holds=("H-2",))
            ],
        }
    )

    report = Run(store)()

    assert report["held_skipped"] == {
        "archive": 0,
        "removal": 0,
        "applicants": 1,
        "candidates": 1,
        "registrations": 0,
        "people": 0,
    }
    assert all(not writes for writes in store.committed)


def test_the_applicants_phase_empties_the_partition_and_forgets_people_at_zero() -> None:
    """Seed: "The person's shared data lives until the last one ends" (refs at 0, no hold: forgotten)."""
    due = "2026-01-01T00:00:00.000Z"
    store = FakeSweepStore(
        due_records={DueKind.APPLICANTS: [vacancy("V-1", due)]},
        partitions={
            "V-1": [
                child("V-1", RecordKind.ANONYMISED, "ANON#1"),
                child("V-1", RecordKind.APPLICATION, "A-1", "P-1"),
                child("V-1", RecordKind.APPLICATION, "A-2", "P-2"),
                child("V-1", RecordKind.APPLICATION, "A-3", "P-3"),
                child("V-1", RecordKind.CANDIDATE, "P-1", "P-1"),
            ]
        },
        refs={"P-1": PersonRefs(1, False, exports=True), "P-2": PersonRefs(2, False), "P-3": PersonRefs(1, True)},
    )
    run = Run(store)

    dry = run(dry_run=True)
    report = run()

    assert report["counts"]["applicants"] == {
        "applications": 3,
        "candidates": 1,
        "registrations": 0,
        "anonymised": 1,
        "other": 0,
        "vacancies": 1,
    }
    # P-2 still has an application elsewhere; P-3 is held (at 0, skipped and counted)
    assert (report["counts"]["people"], report["held_skipped"]["people"]) == ({"people": 1}, 1)
    assert (dry["counts"], dry["held_skipped"]) == (report["counts"], report["held_skipped"])
    assert set(store.refs) == {"P-2", "P-3"} and store.shredded == ["P-1"]
    assert run.exports.purged == ["P-1"]  # P-1 had a subject-access export
    [writes, forgetting] = [w for w in store.committed if w and not isinstance(w[0], DryDecrement)]
    assert forgetting == [ForgetPerson("P-1"), ShredKey("P-1")]
    assert writes[-4:-3] == [Delete(vacancy("V-1", due), DueKind.APPLICANTS)]  # the vacancy last, then refs
    assert [w for w in writes if isinstance(w, Decrement)] == [
        Decrement("P-1", 1),
        Decrement("P-2", 1),
        Decrement("P-3", 1),
    ]
    assert sorted(e.record_kind.value for e in run.publisher.events) == ["application"] * 3 + ["candidate", "person"]
    assert [e.action for e in run.audit.entries[-2:]] == ["retention.sweep.applicants", "retention.sweep.people"]


def test_a_partition_larger_than_a_page_is_done_over_several_pages_within_the_transaction_limit() -> None:
    """Issue 11: "It scales past one Lambda's time limit": pages of at most 100 actions."""
    due = "2026-01-01T00:00:00.000Z"
    apps = [child("V-1", RecordKind.APPLICATION, f"A-{n:03d}", f"P-{n:03d}") for n in range(250)]
    store = FakeSweepStore(
        due_records={DueKind.APPLICANTS: [vacancy("V-1", due)]},
        partitions={"V-1": apps},
        refs={f"P-{n:03d}": PersonRefs(2, False) for n in range(250)},
    )

    report = Run(store)()

    assert report["counts"]["applicants"]["applications"] == 250
    assert report["counts"]["applicants"]["vacancies"] == 1
    assert all(len(writes) <= TRANSACTION_LIMIT - 2 for writes in store.committed)
    assert len(store.committed) > 2
    partial = [w for w in store.committed[0] if isinstance(w, Guard)]
    assert partial == [Guard("V-1", DueKind.APPLICANTS, due)]  # an unfinished vacancy is guarded, not deleted


def test_a_concurrent_change_drops_only_the_record_it_touched() -> None:
    """Each delete is conditioned on the due date read; a record changed meanwhile is left for tomorrow."""
    due = "2026-01-01T00:00:00.000Z"
    store = FakeSweepStore(
        due_records={
            DueKind.CANDIDATE: [
                child("V-1", RecordKind.CANDIDATE, "P-1", "P-1", due=due),
                child("V-1", RecordKind.CANDIDATE, "P-2", "P-2", due=due),
            ]
        },
        reject_once={0},
    )

    report = Run(store)()

    assert report["counts"]["candidates"]["candidates"] == 1
    [writes] = [w for w in store.committed if w]
    assert [w.record.record_id for w in writes if isinstance(w, Delete)] == ["P-2"]


def test_a_second_run_changes_nothing_and_reports_so_in_its_own_report() -> None:
    """Issue 11: "a second run on the same day changes nothing"; each execution writes its own immutable report,
    carrying the day's totals."""
    due = "2026-01-01T00:00:00.000Z"
    store = FakeSweepStore(due_records={DueKind.CANDIDATE: [child("V-1", RecordKind.CANDIDATE, "P-1", "P-1", due=due)]})
    run = Run(store)
    first = run()
    second = run()

    assert first["counts"]["candidates"]["candidates"] == 1 and first["written"] is True
    assert second["counts"]["candidates"]["candidates"] == 0 and second["written"] is True
    assert second["report"] != first["report"] and second["totals"] == first["totals"]


def test_a_retried_report_step_writes_its_report_once() -> None:
    """The report object is immutable: a retried step (same execution) finds it written and leaves it."""
    store = FakeSweepStore()
    run = Run(store)
    [state] = start_sweep(store=store, dry_run=False, execution="retried")
    while not state.done:
        state = sweep_page(state, store=store, publisher=run.publisher, audit=run.audit, exports=run.exports)
    first = report_sweep(state, store=store, reports=run.reports)
    again = report_sweep(state, store=store, reports=run.reports)
    assert (first["written"], again["written"]) == (True, False) and first["report"] == again["report"]


# --- the state machine ------------------------------------------------------------------------------------------


def test_the_sweep_definition_keeps_to_states_the_local_interpreter_runs() -> None:
    """Issue 11: "a Distributed Map or batched pages in AWS, the same ASL locally": Task, Choice, inline Map
    (ItemsPath, MaxConcurrency 2), Succeed; the page loops until `done`."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_stepfunctions as sfn

    from infra.constructs.retention_sweep import sweep_definition

    stack = Stack(App(), "SweepAsl")
    function = lambda_.Function.from_function_arn(stack, "Fn", "arn:aws:lambda:eu-west-1:123456789012:function:sweep")
    definition = sweep_definition(stack, step_function=function)
    asl = sfn.StateGraph(definition.start_state, "sweep").to_graph_json()

    assert asl["StartAt"] == "StartSweep"
    start, tenants, done = (asl["States"][n] for n in ("StartSweep", "SweepTenants", "Swept"))
    assert start["Parameters"] == {"step": "start", "input.$": "$", "execution.$": "$$.Execution.Name"}
    assert (tenants["Type"], tenants["ItemsPath"], tenants["MaxConcurrency"]) == ("Map", "$.tenants", 2)
    assert tenants["ItemProcessor"]["ProcessorConfig"]["Mode"] == "INLINE"
    inner = tenants["ItemProcessor"]["States"]
    assert inner["SweepPage"]["Parameters"] == {"step": "page", "state.$": "$"}
    assert inner["SweepPage"]["Next"] == "TenantSwept"
    assert inner["TenantSwept"]["Choices"] == [{"Variable": "$.done", "BooleanEquals": True, "Next": "ReportSweep"}]
    assert inner["TenantSwept"]["Default"] == "SweepPage"
    assert inner["ReportSweep"]["Parameters"] == {"step": "report", "state.$": "$"} and inner["ReportSweep"]["End"]
    assert done["Type"] == "Succeed"
    kinds = {s["Type"] for s in [*asl["States"].values(), *inner.values()]}
    assert kinds <= {"Task", "Choice", "Pass", "Map", "Succeed", "Fail"}
    assert all(
        any("States.TaskFailed" in r["ErrorEquals"] for r in s["Retry"])
        for s in [start, *inner.values()]
        if s["Type"] == "Task"
    )


def test_the_state_survives_json_between_steps() -> None:
    state = SweepState(tenant="acme", run_id="2026-10-15", dry_run=False, now=clock.isoformat(NOW), execution="x")
    assert SweepState.model_validate(json.loads(json.dumps(state.model_dump(mode="json")))) == state


def test_the_people_phase_forgets_everyone_at_zero_in_pages_that_fit_one_transaction() -> None:
    """Seed: "The person's shared data lives until the last one ends": people at 0 (from this run or left there
    by a released hold) go in pages of 49 (two actions each); the held ones are skipped and counted."""
    refs = {f"P-{n:03d}": PersonRefs(0, n % 10 == 0) for n in range(120)}
    store = FakeSweepStore(refs=refs)
    run = Run(store)

    dry = run(dry_run=True)
    report = run()

    assert report["counts"]["people"] == {"people": 108} and report["held_skipped"]["people"] == 12
    assert (dry["counts"], dry["held_skipped"]) == (report["counts"], report["held_skipped"])
    assert report["persons_forgotten"] == 108
    assert sorted(store.refs) == [f"P-{n:03d}" for n in range(0, 120, 10)]
    assert all(len(writes) <= TRANSACTION_LIMIT - 2 for writes in store.committed)
    events = [e for e in run.publisher.events if e.record_kind.value == "person"]
    assert len(events) == 108 and {(e.reason.value, e.request_id, e.vacancy_id) for e in events} == {
        ("schedule", report["run_id"], None)
    }
    assert run.exports.purged == []  # nobody had an export: no S3 request


def test_a_person_who_is_needed_again_is_not_forgotten() -> None:
    """A person read at 0 who re-applied meanwhile (the delete's condition fails): only that person stays."""
    store = FakeSweepStore(refs={"P-1": PersonRefs(0, False), "P-2": PersonRefs(0, False)}, reject_once={0})

    report = Run(store)()

    assert report["counts"]["people"] == {"people": 1}
    assert set(store.refs) == {"P-1"} and store.shredded == ["P-2"]


def test_a_dry_run_foresees_the_people_its_own_decrements_would_bring_to_zero() -> None:
    """Issue 11: "A dry run changes nothing and reports the same counts", the people forgotten included."""
    due = "2026-01-01T00:00:00.000Z"
    registrations = [child("POOL", RecordKind.REGISTRATION, f"R-{n}", f"P-{n}", due=due) for n in range(3)]
    store = FakeSweepStore(
        due_records={DueKind.REGISTRATION: registrations},
        refs={"P-0": PersonRefs(1, False), "P-1": PersonRefs(2, False), "P-2": PersonRefs(1, True)},
    )
    run = Run(store)

    dry = run(dry_run=True)

    assert {p: r.refs for p, r in store.refs.items()} == {"P-0": 1, "P-1": 2, "P-2": 1}  # nothing changed
    assert dry["counts"]["people"] == {"people": 1} and dry["held_skipped"]["people"] == 1
    real = run()
    assert (dry["counts"], dry["held_skipped"]) == (real["counts"], real["held_skipped"])
    assert set(store.refs) == {"P-1", "P-2"}
