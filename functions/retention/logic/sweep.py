"""Use cases of the daily retention sweep (seed 002; issue 11, section 3), one per workflow step.

`start_sweep` lists the tenants and fixes the run: its id (`<YYYY-MM-DD>`, or `<YYYY-MM-DD>-dry`) and its `now`,
against which every page judges due dates. `sweep_page` does at most one page of one phase for one tenant and
returns the state of the next page; the workflow loops on it until `done`. `report_sweep` writes the run report.

Phases, in order (each reads its own sparse due index, `tenant = :t AND <kind>_due <= :now`, never a scan):

- archive: a closed vacancy is archived as of its due date and gets its removal date;
- removal: an archived vacancy is removed as of its due date, gets its applicants' date, and its fingerprints go;
- applicants: everything left in a removed vacancy's partition goes (applications, candidates, registrations,
  anonymised copies, the vacancy item itself);
- candidates: suggested candidates' links to their vacancy go;
- registrations: talent-pool registrations go;
- people: the people no application or registration needs any more (`refs` at 0, the `PeopleByRefs` index) and
  not held are forgotten: their data key shredded and their person item deleted in the page's transaction (on
  condition they are still at 0 and not held), their subject-access exports purged (only theirs that have any).
  This phase also forgets people left at 0 by anything else: a released hold, an erasure kept under a hold.

A phase begins when it was due, not when the sweep reached it, so a late sweep never extends retention. Records
under a legal hold (their `holds`, which logic/holds.py fans out from a held vacancy or person to every record it
covers) are skipped and counted. Each page is one DynamoDB transaction (at most 100 actions) that also writes a
page marker and adds the page's counts to the run record: a page is all or nothing, a retried page finds its marker
and only repeats what follows the transaction (events, audit), and what a page changed
has left its due index, so running the day again changes nothing. A dry run plans the same pages, writes only its
own run record, markers and (instead of each person's refs) its own decrement per person (under the `-dry` run
id), and counts what the real run would change, the people it would forget included.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import Field

from functions.retention.dal.sweep import (
    AlreadyCommitted,
    Archive,
    Committed,
    Decrement,
    Delete,
    DryDecrement,
    ForgetPerson,
    Guard,
    PageMarker,
    Record,
    RecordKind,
    Remove,
    ReportStore,
    RunTotals,
    ShredKey,
    SweepStore,
    Write,
)
from functions.retention.logic.timeline import add_months
from functions.retention.models.entities import DueKind, RetentionPolicy
from functions.retention.models.events import PurgedKind, PurgeReason, RecordPurged
from shared import clock
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor
from shared.errors import DependencyFailure
from shared.events import EventPublisher
from shared.models import Model

PAGE_SIZE = 100  # due records read per page (the Query's Limit)
TRANSACTION_LIMIT = 100  # TransactWriteItems' limit on actions
_RESERVED = 2  # every page's transaction also writes its marker and the run record
_ATTEMPTS = 4  # a transaction re-planned without the records a concurrent change made stale
PEOPLE_PAGE = (TRANSACTION_LIMIT - _RESERVED) // 2  # a person takes two actions (the person item, the data key)
JOB = "retention-sweep"


class Phase(StrEnum):
    ARCHIVE = "archive"
    REMOVAL = "removal"
    APPLICANTS = "applicants"
    CANDIDATES = "candidates"
    REGISTRATIONS = "registrations"
    PEOPLE = "people"

    @property
    def due_kind(self) -> DueKind:
        return _DUE_KINDS[self]


_DUE_KINDS = {
    Phase.ARCHIVE: DueKind.ARCHIVE,
    Phase.REMOVAL: DueKind.REMOVAL,
    Phase.APPLICANTS: DueKind.APPLICANTS,
    Phase.CANDIDATES: DueKind.CANDIDATE,
    Phase.REGISTRATIONS: DueKind.REGISTRATION,
}
PHASES: tuple[Phase, ...] = tuple(Phase)

# What each phase counts (besides `held_skipped`): the report lists every one, zeros included.
COUNTERS: dict[Phase, tuple[str, ...]] = {
    Phase.ARCHIVE: ("vacancies",),
    Phase.REMOVAL: ("vacancies", "fingerprints"),
    Phase.APPLICANTS: ("applications", "candidates", "registrations", "anonymised", "other", "vacancies"),
    Phase.CANDIDATES: ("candidates",),
    Phase.REGISTRATIONS: ("registrations",),
    Phase.PEOPLE: ("people",),
}
HELD = "held_skipped"


class ExportPurger(Protocol):
    def purge_people(self, tenant: str, person_ids: Sequence[str]) -> int:
        """Delete every version of the people's subject-access exports; how many versions went."""
        ...


# --- state ------------------------------------------------------------------------------------------------------


class SweepState(Model):
    """What flows from one workflow step to the next for one tenant (JSON, well under Step Functions' 256 KB)."""

    tenant: str
    run_id: str
    dry_run: bool
    now: str  # the run's moment (clock.isoformat), fixed at start
    execution: str
    phase: Phase = Phase.ARCHIVE
    cursor: dict[str, Any] | None = None  # where the phase's next read of its due index starts
    more: bool = True  # the due index may hold more beyond `cursor`
    pending: list[dict[str, Any]] = Field(default_factory=list)  # records read but not yet handled (Record JSON)
    cascade: list[dict[str, Any]] = Field(default_factory=list)  # dry run: what the next phase would see too
    swept: list[str] = Field(default_factory=list)  # dry run: vacancies whose partition the applicants phase emptied
    decremented: bool = False  # dry run, people phase: reading this execution's own decrements (after the index)
    page: int = 0  # the last page number used by the run (continued across executions)
    done: bool = False
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)  # this execution's counts per phase


class PageResult(Model):
    """What a committed page recorded in its marker, so that a retried page repeats only what follows."""

    tenant: str
    run_id: str
    dry_run: bool
    execution: str
    phase: Phase
    page: int
    counts: dict[str, int]
    events: list[dict[str, Any]] = Field(default_factory=list)
    next_state: dict[str, Any]
    started_at: str
    policy_version: int


def run_id_for(moment: datetime, *, dry_run: bool) -> str:
    day = clock.isoformat(moment)[:10]
    return f"{day}-dry" if dry_run else day


# --- start ------------------------------------------------------------------------------------------------------


def start_sweep(*, store: SweepStore, dry_run: bool, execution: str | None = None) -> list[SweepState]:
    """One state per tenant for today's run, all judged against the same moment (clock.now() here)."""
    now = clock.now()
    run_id = run_id_for(now, dry_run=dry_run)
    execution = execution or str(uuid.uuid4())
    states = []
    for tenant in store.tenants():
        totals = store.totals(tenant, run_id)
        states.append(
            SweepState(
                tenant=tenant,
                run_id=run_id,
                dry_run=dry_run,
                now=clock.isoformat(now),
                execution=execution,
                page=totals.pages if totals else 0,
            )
        )
    return states


# --- one page ---------------------------------------------------------------------------------------------------


@dataclass
class _Unit:
    """The writes of one due record (with its partition's children); dropped whole when a condition fails."""

    record: Record
    writes: list[Write] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    events: list[RecordPurged] = field(default_factory=list)
    decrements: Counter[str] = field(default_factory=Counter)


@dataclass
class _Plan:
    state: SweepState
    policy: RetentionPolicy
    units: list[_Unit] = field(default_factory=list)
    held: int = 0
    cascade: list[Record] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)

    @property
    def persons(self) -> set[str]:
        return {p for unit in self.units for p in unit.decrements}

    @property
    def room(self) -> int:
        used = sum(len(unit.writes) for unit in self.units) + len(self.persons)
        return TRANSACTION_LIMIT - _RESERVED - used

    def counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for unit in self.units:
            total.update(unit.counts)
        if self.held:
            total[HELD] += self.held
        return total

    def writes(self) -> tuple[list[Write], list[int | str]]:
        """The transaction's writes and, for each, its unit's index or the person it decrements. A dry run writes
        only its own stand-in for each decrement (what its people phase reads back)."""
        state = self.state
        writes: list[Write] = []
        owners: list[int | str] = []
        if not state.dry_run:
            for index, unit in enumerate(self.units):
                writes.extend(unit.writes)
                owners.extend([index] * len(unit.writes))
        decrements: Counter[str] = Counter()
        for unit in self.units:
            decrements.update(unit.decrements)
        for person_id in sorted(decrements):
            by = decrements[person_id]
            writes.append(
                DryDecrement(state.run_id, state.execution, person_id, by)
                if state.dry_run
                else Decrement(person_id, by)
            )
            owners.append(person_id)
        return writes, owners


def _purged(state: SweepState, kind: PurgedKind, record: Record, record_id: str) -> RecordPurged:
    return RecordPurged(
        tenant=state.tenant,
        record_kind=kind,
        record_id=record_id,
        vacancy_id=record.vacancy_id or None,
        person_id=record.person_id,
        reason=PurgeReason.SCHEDULE,
        request_id=state.run_id,
        correlation_id=state.run_id,
    )


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


class _Stop(Exception):
    """The page is full: the record goes back to the head of the queue (with its progress)."""

    def __init__(self, record: Record) -> None:
        self.record = record


def _archive(plan: _Plan, record: Record, store: SweepStore) -> None:
    if plan.room < 1:
        raise _Stop(record)
    assert record.due is not None
    removal_due = add_months(_parse(record.due), plan.policy.keep_archived_months)
    unit = _Unit(record, [Archive(record.vacancy_id, record.due, clock.isoformat(removal_due))])
    unit.counts["vacancies"] += 1
    plan.units.append(unit)
    if plan.state.dry_run and clock.isoformat(removal_due) <= plan.state.now:
        plan.cascade.append(replace(record, due=clock.isoformat(removal_due), position=None))


def _removal(plan: _Plan, record: Record, store: SweepStore) -> None:
    if plan.room < 2:
        raise _Stop(record)
    assert record.due is not None
    state = plan.state
    children, more = store.children(
        state.tenant, record.vacancy_id, fingerprints_only=True, after=record.after, limit=plan.room - 1
    )
    unit = _Unit(record, [Delete(child) for child in children])
    unit.counts["fingerprints"] += len(children)
    if more:
        unit.writes.append(Guard(record.vacancy_id, DueKind.REMOVAL, record.due))
        plan.units.append(unit)
        raise _Stop(replace(record, after=children[-1].sk if children else record.after))
    applicants_due = clock.isoformat(add_months(_parse(record.due), plan.policy.keep_applicants_months))
    unit.writes.append(Remove(record.vacancy_id, record.due, applicants_due))
    unit.counts["vacancies"] += 1
    unit.events.append(_purged(state, PurgedKind.VACANCY, record, record.vacancy_id))
    plan.units.append(unit)
    if state.dry_run and applicants_due <= state.now:
        plan.cascade.append(replace(record, due=applicants_due, position=None, after=None))


_CHILD_EVENTS = {
    RecordKind.APPLICATION: PurgedKind.APPLICATION,
    RecordKind.CANDIDATE: PurgedKind.CANDIDATE,
    RecordKind.REGISTRATION: PurgedKind.REGISTRATION,
}
_CHILD_COUNTERS = {
    RecordKind.APPLICATION: "applications",
    RecordKind.CANDIDATE: "candidates",
    RecordKind.REGISTRATION: "registrations",
    RecordKind.ANONYMISED: "anonymised",
    RecordKind.OTHER: "other",
    RecordKind.VACANCY: "other",
}


def _applicants(plan: _Plan, record: Record, store: SweepStore) -> None:
    if plan.room < 2:
        raise _Stop(record)
    assert record.due is not None
    state = plan.state
    # Applications and registrations take two actions each (the delete, the person's refs): read no more children
    # than can fit, so that no child is read twice.
    children, more = store.children(
        state.tenant, record.vacancy_id, fingerprints_only=False, after=record.after, limit=max(1, (plan.room - 1) // 2)
    )
    unit = _Unit(record)
    plan.units.append(unit)  # so that `plan.room` counts this unit's writes as they are added
    after, blocked, cut = record.after, record.blocked, False
    for child in children:
        adds_person = child.kind in (RecordKind.APPLICATION, RecordKind.REGISTRATION) and (
            child.person_id not in plan.persons
        )
        if not child.holds and plan.room - 1 < 1 + int(adds_person):  # keep one action for the vacancy
            cut = True
            break
        after = child.sk
        if child.holds:
            plan.held += 1
            blocked = True  # the vacancy item stays (and keeps its due date) while anything in it is held
            continue
        unit.writes.append(Delete(child))
        if child.kind is RecordKind.FINGERPRINT:
            continue  # gone with the vacancy's removal already; one left over is deleted, not counted
        unit.counts[_CHILD_COUNTERS[child.kind]] += 1
        if child.kind in _CHILD_EVENTS and child.person_id:
            unit.events.append(_purged(state, _CHILD_EVENTS[child.kind], child, child.record_id))
        if child.kind in (RecordKind.APPLICATION, RecordKind.REGISTRATION) and child.person_id:
            unit.decrements[child.person_id] += 1
    if more or cut:
        unit.writes.append(Guard(record.vacancy_id, DueKind.APPLICANTS, record.due))
        raise _Stop(replace(record, after=after, blocked=blocked))
    if blocked:
        unit.writes.append(Guard(record.vacancy_id, DueKind.APPLICANTS, record.due))
    else:
        unit.writes.append(Delete(record, DueKind.APPLICANTS))
        unit.counts["vacancies"] += 1
    if state.dry_run:
        plan.swept.append(record.vacancy_id)


def _single(plan: _Plan, record: Record, store: SweepStore) -> None:
    """A suggested candidate's link or a registration: one conditioned delete (and the person's refs)."""
    state = plan.state
    if state.dry_run and record.vacancy_id in state.swept:
        return  # the applicants phase would have deleted it already (counted there)
    registration = record.kind is RecordKind.REGISTRATION
    adds_person = registration and record.person_id not in plan.persons
    if plan.room < 1 + int(adds_person):
        raise _Stop(record)
    unit = _Unit(record, [Delete(record, state.phase.due_kind)])
    unit.counts["registrations" if registration else "candidates"] += 1
    kind = PurgedKind.REGISTRATION if registration else PurgedKind.CANDIDATE
    unit.events.append(_purged(state, kind, record, record.record_id))
    if registration and record.person_id:
        unit.decrements[record.person_id] += 1
    plan.units.append(unit)


def _person(plan: _Plan, record: Record, store: SweepStore) -> None:
    """A person at 0 refs, not held: forgotten (the person item and the data key, in the page's transaction)."""
    if plan.room < 2:
        raise _Stop(record)
    person_id = record.record_id
    unit = _Unit(record, [ForgetPerson(person_id), ShredKey(person_id)])
    unit.counts["people"] += 1
    unit.events.append(_purged(plan.state, PurgedKind.PERSON, record, person_id))
    plan.units.append(unit)


_HANDLERS: dict[Phase, Callable[[_Plan, Record, SweepStore], None]] = {
    Phase.ARCHIVE: _archive,
    Phase.REMOVAL: _removal,
    Phase.APPLICANTS: _applicants,
    Phase.CANDIDATES: _single,
    Phase.REGISTRATIONS: _single,
    Phase.PEOPLE: _person,
}


@dataclass
class _Planned:
    plan: _Plan
    next_state: SweepState
    leftover_head: Record | None  # the record put back with progress (dropped if its unit is rejected)


def _plan_page(state: SweepState, store: SweepStore, policy: RetentionPolicy, page_size: int) -> _Planned:
    queue = [Record.from_json(raw) for raw in state.pending]
    cursor, more = state.cursor, state.more
    decremented = state.decremented
    if not queue and more:
        if state.phase is not Phase.PEOPLE:
            queue, cursor = store.due(state.tenant, state.phase.due_kind, state.now, cursor=cursor, limit=page_size)
        elif decremented:
            queue, cursor = store.dry_people(
                state.tenant, state.run_id, state.execution, cursor=cursor, limit=min(page_size, PEOPLE_PAGE)
            )
        else:
            queue, cursor = store.people(state.tenant, cursor=cursor, limit=min(page_size, PEOPLE_PAGE))
        more = cursor is not None
        if not more and state.phase is Phase.PEOPLE and state.dry_run and not decremented:
            # The index's people at 0 are read; then those this dry run's own decrements would bring to 0.
            cursor, more, decremented = None, True, True
    plan = _Plan(state, policy)
    handle = _HANDLERS[state.phase]
    leftover: list[Record] = []
    head: Record | None = None
    for index, record in enumerate(queue):
        if record.holds:
            plan.held += 1  # never changed, never read further (a held vacancy holds its whole partition)
            continue
        try:
            handle(plan, record, store)
        except _Stop as stop:
            head = stop.record
            leftover = [stop.record, *queue[index + 1 :]]
            break
    swept = state.swept + plan.swept
    if leftover or more:
        next_state = state.model_copy(
            update={
                "cursor": cursor,
                "more": more,
                "pending": [r.to_json() for r in leftover],
                "cascade": state.cascade + [r.to_json() for r in plan.cascade],
                "swept": swept,
                "decremented": decremented,
            }
        )
    else:
        next_state = _next_phase(state.model_copy(update={"swept": swept}), plan.cascade)
    return _Planned(plan, next_state, head)


def _next_phase(state: SweepState, cascade: list[Record]) -> SweepState:
    position = PHASES.index(state.phase)
    carried = state.cascade + [r.to_json() for r in cascade]
    if position + 1 == len(PHASES):
        return state.model_copy(
            update={
                "cursor": None,
                "more": False,
                "pending": [],
                "cascade": [],
                "swept": [],
                "decremented": False,
                "done": True,
            }
        )
    return state.model_copy(
        update={
            "phase": PHASES[position + 1],
            "cursor": None,
            "more": True,
            "pending": carried,  # dry run: what the previous phase would have made due now
            "cascade": [],
        }
    )


def _accumulate(counts: dict[str, dict[str, int]], phase: Phase, page: dict[str, int]) -> dict[str, dict[str, int]]:
    merged = {name: dict(values) for name, values in counts.items()}
    target = merged.setdefault(phase.value, {})
    for name, value in page.items():
        target[name] = target.get(name, 0) + value
    return merged


def sweep_page(
    state: SweepState,
    *,
    store: SweepStore,
    publisher: EventPublisher,
    audit: AuditLog,
    exports: ExportPurger,
    page_size: int = PAGE_SIZE,
) -> SweepState:
    """Do at most one page of the current phase for `state.tenant`; return the state of the next page.

    Raises DependencyFailure when the page could not commit (a transaction conflict, throttling) or its events
    could not be published: the workflow retries the page with the same input, which is safe (see the module
    docstring)."""
    if state.done:
        return state
    policy = store.policy(state.tenant)
    first = True
    while True:
        planned = _plan_page(state, store, policy, page_size)
        if planned.plan.units or planned.plan.held:
            break
        if first:
            # A retried page whose first attempt committed finds its records gone: its marker says what it did.
            recorded = store.marker(state.tenant, state.run_id, state.page + 1)
            if recorded is not None:
                return _after_commit(PageResult.model_validate(recorded), publisher=publisher, audit=audit)
            first = False
        # Nothing to do in what was read: move on without a page (nothing to record, nothing to repeat).
        state = planned.next_state
        if state.done:
            return state
    return _commit(planned, store=store, publisher=publisher, audit=audit, exports=exports, policy=policy)


def _commit(
    planned: _Planned,
    *,
    store: SweepStore,
    publisher: EventPublisher,
    audit: AuditLog,
    exports: ExportPurger,
    policy: RetentionPolicy,
) -> SweepState:
    plan, state = planned.plan, planned.plan.state
    page = state.page + 1
    next_state = planned.next_state
    if not state.dry_run:
        # The people's exports go before their key and item: a failure here fails the page before anything is
        # committed (the retry purges again, idempotent), and an export never outlives its forgotten person.
        with_exports = [unit.record.record_id for unit in plan.units if unit.record.exports]
        if with_exports:
            exports.purge_people(state.tenant, with_exports)
    for _ in range(_ATTEMPTS):
        counts = dict(plan.counts())
        events = [event for unit in plan.units for event in unit.events]
        result = PageResult(
            tenant=state.tenant,
            run_id=state.run_id,
            dry_run=state.dry_run,
            execution=state.execution,
            phase=state.phase,
            page=page,
            counts=counts,
            events=[] if state.dry_run else [_event_json(e) for e in events],
            next_state=next_state.model_copy(
                update={"page": page, "counts": _accumulate(state.counts, state.phase, counts)}
            ).model_dump(mode="json"),
            started_at=state.now,
            policy_version=policy.version,
        )
        writes, owners = plan.writes()
        marker = PageMarker(
            run_id=state.run_id,
            page=page,
            phase=state.phase.value,
            dry_run=state.dry_run,
            # Held records are seen again by every execution (a resumed run re-reads them): the report takes
            # them from the execution that writes it, and the run record adds up only what changed.
            counts={name: value for name, value in counts.items() if name != HELD},
            started_at=state.now,
            policy_version=policy.version,
            body=result.model_dump_json(),
        )
        outcome = store.commit(state.tenant, marker, writes)
        if isinstance(outcome, Committed):
            return _after_commit(result, publisher=publisher, audit=audit)
        if isinstance(outcome, AlreadyCommitted):
            recorded = PageResult.model_validate(outcome.result)
            return _after_commit(recorded, publisher=publisher, audit=audit)
        # A concurrent change (a hold placed, a due date moved, a person gone) met some conditions: nothing was
        # written. Drop those records from this run (tomorrow's run judges them again) and commit the rest.
        dropped_units = {owners[i] for i in outcome.failed if isinstance(owners[i], int)}
        gone_persons = {owners[i] for i in outcome.failed if isinstance(owners[i], str)}
        if not dropped_units and not gone_persons:
            raise DependencyFailure(f"sweep page {page} of {state.tenant} was rejected without a reason")
        if planned.leftover_head is not None and any(
            plan.units[i].record.sk == planned.leftover_head.sk
            and plan.units[i].record.vacancy_id == planned.leftover_head.vacancy_id
            for i in dropped_units
            if isinstance(i, int)
        ):
            next_state = next_state.model_copy(update={"pending": next_state.pending[1:]})
        plan.units = [unit for i, unit in enumerate(plan.units) if i not in dropped_units]
        for unit in plan.units:
            for person_id in gone_persons:
                unit.decrements.pop(str(person_id), None)
    raise DependencyFailure(f"sweep page {page} of {state.tenant} kept meeting concurrent changes")


def _event_json(event: RecordPurged) -> dict[str, Any]:
    return {
        **event.payload(),
        "tenant": event.tenant,
        "event_id": event.event_id,
        "occurred_at": clock.isoformat(event.occurred_at),
        "correlation_id": event.correlation_id,
    }


def _after_commit(result: PageResult, *, publisher: EventPublisher, audit: AuditLog) -> SweepState:
    """What follows a committed page (again, when a retried page finds its marker): the events, the audit entry.
    The people whose refs reached 0 are the people phase's (at the end of the run, from the index)."""
    next_state = SweepState.model_validate(result.next_state)
    if result.events:
        publisher.publish([RecordPurged.model_validate(raw) for raw in result.events])
    summary = ", ".join(f"{name}={value}" for name, value in sorted(result.counts.items())) or "nothing due"
    audit.append(
        AuditEntry(
            tenant=result.tenant,
            actor=Actor.system(JOB, result.tenant).label,
            action=f"retention.sweep.{result.phase.value}",
            resource=f"sweep/{result.run_id}/{result.phase.value}/{result.page}",
            outcome=Outcome.ALLOWED,
            request_id=result.run_id,
            reason=f"{'dry run: would change' if result.dry_run else 'changed'} {summary}"[:512],
        )
    )
    return next_state


# --- report -----------------------------------------------------------------------------------------------------


def report_key(tenant: str, run_id: str, execution: str) -> str:
    """One report per execution: a day's run may take several (the schedule, a resumed or a manual one), and each
    reports what it changed; the day's totals ride along in each."""
    return f"retention/sweeps/{tenant}/{run_id}/{execution}.json"


def _complete(counts: dict[str, dict[str, int]]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Counts per phase (every counter, zeros included) and held records skipped per phase."""
    changed = {
        phase.value: {name: counts.get(phase.value, {}).get(name, 0) for name in COUNTERS[phase]} for phase in PHASES
    }
    held = {phase.value: counts.get(phase.value, {}).get(HELD, 0) for phase in PHASES}
    return changed, held


def report_sweep(state: SweepState, *, store: SweepStore, reports: ReportStore) -> dict[str, Any]:
    """Write the run's report (the run record's totals, which a resumed run completes) to the export bucket once;
    return this execution's counts and the run's totals."""
    totals = store.totals(state.tenant, state.run_id) or RunTotals(counts={})
    run_counts, _ = _complete(totals.counts)
    counts, held = _complete(state.counts)
    policy_version = totals.policy_version
    if policy_version is None:
        policy_version = store.policy(state.tenant).version
    key = report_key(state.tenant, state.run_id, state.execution)
    body = {
        "tenant": state.tenant,
        "run_id": state.run_id,
        "execution": state.execution,
        "dry_run": state.dry_run,
        "started_at": totals.started_at or state.now,
        "finished_at": clock.isoformat(clock.now()),
        "policy_version": policy_version,
        "counts": counts,
        "held_skipped": held,
        "persons_forgotten": counts[Phase.PEOPLE.value]["people"],
        "run_totals": {"counts": run_counts, "persons_forgotten": run_counts[Phase.PEOPLE.value]["people"]},
        "pages": totals.pages,
    }
    written = store_report(reports, key, body)
    return {
        "tenant": state.tenant,
        "run_id": state.run_id,
        "dry_run": state.dry_run,
        "counts": counts,
        "held_skipped": held,
        "persons_forgotten": counts[Phase.PEOPLE.value]["people"],
        "totals": {"counts": run_counts, "persons_forgotten": run_counts[Phase.PEOPLE.value]["people"]},
        "report": key,
        "written": written,
    }


def store_report(reports: ReportStore, key: str, body: dict[str, Any]) -> bool:
    return reports.put_once(key, json.dumps(body, sort_keys=True, indent=2).encode())
