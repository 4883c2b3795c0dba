"""The ATS reports its vacancies: idempotent on its id, phases only forward, reads confined to the caller's tenant
(seed 002: the timeline is cumulative, so a vacancy never re-opens)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from functions.retention.dal.policy import StoredPolicy
from functions.retention.dal.vacancies import StaleWrite
from functions.retention.logic.vacancies import get_vacancy, report_vacancy
from functions.retention.models.entities import RetentionPolicy, Vacancy, VacancyKind, VacancyStatus
from functions.retention.models.input import VacancyReport
from shared import clock
from shared.audit import Outcome
from shared.auth import Actor, Role, Scope
from shared.errors import BadRequest, Conflict, Forbidden, NotFound
from tests.fakes import FakeAuditLog

OPENED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CLOSED = OPENED + timedelta(days=30)
ATS = Actor.integration("acme", "ats-client-1", frozenset({Scope.RETENTION_WRITE}))


@pytest.fixture(autouse=True)
def _clock() -> Any:
    clock.freeze(datetime(2026, 3, 1, tzinfo=UTC))
    yield
    clock.freeze(None)


class FakeVacancyStore:
    """The VacancyStore port in memory, with the adapter's optimistic-locking contract."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Vacancy] = {}
        self.writes = 0
        self.race: Vacancy | None = None  # written just before the next save, as a concurrent report would be
        self.holds: dict[tuple[str, str], frozenset[str]] = {}  # holds placed before the first report

    def get(self, tenant: str, vacancy_id: str) -> Vacancy | None:
        return self.items.get((tenant, vacancy_id))

    def active_holds(self, tenant: str, vacancy_id: str) -> frozenset[str]:
        return self.holds.get((tenant, vacancy_id), frozenset())

    def save(self, vacancy: Vacancy, *, previous: Vacancy | None) -> None:
        if self.race is not None:
            self.items[(self.race.tenant, self.race.vacancy_id)], self.race = self.race, None
        current = self.items.get((vacancy.tenant, vacancy.vacancy_id))
        if (current.version if current else None) != (previous.version if previous else None):
            raise StaleWrite(vacancy.vacancy_id)
        self.items[(vacancy.tenant, vacancy.vacancy_id)] = vacancy
        self.writes += 1


class FakePolicyStore:
    """The PolicyStore port in memory (reads counted)."""

    def __init__(self, *policies: RetentionPolicy) -> None:
        self.items = {p.tenant: StoredPolicy(p) for p in policies}
        self.reads = 0

    def load(self, tenant: str) -> StoredPolicy | None:
        self.reads += 1
        return self.items.get(tenant)

    def save(self, policy: RetentionPolicy, *, shortened: tuple[str, ...]) -> None:
        self.items[policy.tenant] = StoredPolicy(policy, shortened)


class World:
    def __init__(self, *policies: RetentionPolicy) -> None:
        self.store = FakeVacancyStore()
        self.policies = FakePolicyStore(*policies)
        self.audit = FakeAuditLog()

    def report(self, status: VacancyStatus, actor: Actor = ATS, vacancy_id: str = "V-100", **dates: Any) -> Any:
        dates = {"opened_at": OPENED, "closed_at": None, "archived_at": None, **dates}
        return report_vacancy(
            actor,
            vacancy_id,
            kind=dates.pop("kind", VacancyKind.STANDARD),
            status=status,
            dates=dates,
            store=self.store,
            policies=self.policies,
            audit=self.audit,
            request_id="req-1",
        )

    def read(self, actor: Actor, vacancy_id: str = "V-100") -> Any:
        return get_vacancy(actor, vacancy_id, store=self.store, audit=self.audit, request_id="req-2")


def test_a_first_report_records_the_vacancy_for_the_callers_tenant() -> None:
    world = World()

    vacancy, created = world.report(VacancyStatus.OPEN)

    assert created and vacancy.version == 1 and vacancy.tenant == "acme"
    assert world.store.get("acme", "V-100") == vacancy


def test_repeating_a_report_changes_nothing() -> None:
    world = World()
    world.report(VacancyStatus.OPEN)

    vacancy, created = world.report(VacancyStatus.OPEN)

    assert not created and vacancy.version == 1
    assert world.store.writes == 1


def test_closing_moves_the_vacancy_forward() -> None:
    world = World()
    world.report(VacancyStatus.OPEN)

    vacancy, created = world.report(VacancyStatus.CLOSED, closed_at=CLOSED)

    assert not created and vacancy.version == 2 and vacancy.closed_at == CLOSED
    assert world.store.items[("acme", "V-100")].status is VacancyStatus.CLOSED


def test_a_vacancy_never_goes_back_to_an_earlier_phase() -> None:
    world = World()
    world.report(VacancyStatus.CLOSED, closed_at=CLOSED)

    with pytest.raises(Conflict, match="is closed; it cannot go back to open"):
        world.report(VacancyStatus.OPEN)

    assert world.store.items[("acme", "V-100")].status is VacancyStatus.CLOSED
    assert world.store.writes == 1


def test_the_kind_of_a_vacancy_cannot_change() -> None:
    world = World()
    world.report(VacancyStatus.OPEN)

    with pytest.raises(Conflict, match="kind cannot change"):
        world.report(VacancyStatus.OPEN, kind=VacancyKind.TALENT_POOL)


def test_a_concurrent_report_is_judged_against_what_landed_first() -> None:
    world = World()
    world.report(VacancyStatus.OPEN)
    closed, _ = World().report(VacancyStatus.CLOSED, closed_at=CLOSED)
    world.store.race = closed.model_copy(update={"version": 2})

    with pytest.raises(Conflict, match="is closed; it cannot go back to open"):
        world.report(VacancyStatus.OPEN, opened_at=OPENED - timedelta(days=1))


def test_reporting_needs_the_retention_write_scope_and_is_audited_either_way() -> None:
    world = World()
    reader = Actor.integration("acme", "ats-client-2", frozenset({Scope.RETENTION_READ}))

    with pytest.raises(Forbidden):
        world.report(VacancyStatus.OPEN, actor=reader)
    world.report(VacancyStatus.OPEN)

    assert [(e.actor, e.action, e.outcome) for e in world.audit.entries] == [
        ("integration:ats-client-2", "retention:report", Outcome.DENIED),
        ("integration:ats-client-1", "retention:report", Outcome.ALLOWED),
    ]
    assert world.store.writes == 1


def test_people_read_their_tenants_vacancy_and_another_tenants_is_not_found() -> None:
    world = World()
    world.report(VacancyStatus.OPEN)
    recruiter = Actor.user("acme", "user-1", frozenset({Role.RECRUITER}))
    globex_ats = Actor.integration("globex", "ats-client-9", frozenset({Scope.RETENTION_WRITE}))

    assert world.read(recruiter).vacancy_id == "V-100"
    with pytest.raises(NotFound, match="no vacancy"):
        world.read(globex_ats)
    with pytest.raises(NotFound, match="no vacancy"):
        world.read(recruiter, "V-404")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"status": "closed", "opened_at": "2026-01-05T09:00:00Z"}, "closed_at is required"),
        ({"status": "open", "opened_at": "2026-01-05T09:00:00Z", "closed_at": "2026-02-01T00:00:00Z"}, "only then"),
        (
            {"status": "closed", "opened_at": "2026-01-05T09:00:00Z", "closed_at": "2026-01-01T00:00:00Z"},
            "closed_at is before opened_at",
        ),
        ({"status": "open", "opened_at": "2026-01-05T09:00:00"}, "timezone"),
        ({"status": "reopened", "opened_at": "2026-01-05T09:00:00Z"}, "Input should be"),
        ({"status": "open", "opened_at": "2026-01-05T09:00:00Z", "candidate_email": "x"}, "Extra inputs"),
    ],
)
def test_a_report_that_contradicts_itself_is_refused(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        VacancyReport.model_validate(body)


@pytest.mark.parametrize("vacancy_id", ["", "-leading-dash", "has space", "a#b", "x" * 129, "café"])
def test_a_malformed_vacancy_id_is_a_400_naming_the_rule_and_nothing_is_read_or_written(vacancy_id: str) -> None:
    world = World()

    with pytest.raises(BadRequest, match="vacancy_id must be"):
        world.report(VacancyStatus.OPEN, vacancy_id=vacancy_id)
    with pytest.raises(BadRequest, match="vacancy_id must be"):
        world.read(ATS, vacancy_id)

    assert world.store.writes == 0 and world.audit.entries == []


# --- due dates (seed 002: the timeline is cumulative, every limit an upper limit) -----------------------------

POLICY = RetentionPolicy(tenant="acme", archive_after_months=3, keep_archived_months=6, keep_applicants_months=3)


def test_a_closed_vacancy_stores_when_it_is_archived_under_the_tenants_policy_read_once() -> None:
    """Seed: "vacancies are archived after they've been closed for a specified period of time between three
    months and a year *after* they've been closed"."""
    world = World(POLICY)

    vacancy, _ = world.report(VacancyStatus.CLOSED, closed_at=CLOSED)

    assert vacancy.archive_due == CLOSED.replace(month=CLOSED.month + 3)
    assert (vacancy.removal_due, vacancy.applicants_due) == (None, None)
    assert world.store.get("acme", "V-100") == vacancy
    assert world.policies.reads == 1


def test_without_a_policy_the_seeds_upper_limits_apply() -> None:
    world = World()

    vacancy, _ = world.report(VacancyStatus.CLOSED, closed_at=CLOSED)

    assert vacancy.archive_due == CLOSED.replace(year=CLOSED.year + 1)


def test_an_open_vacancy_has_no_due_date() -> None:
    vacancy, _ = World(POLICY).report(VacancyStatus.OPEN)

    assert (vacancy.archive_due, vacancy.removal_due, vacancy.applicants_due) == (None, None, None)


def test_archiving_early_starts_the_archived_phase_early_and_drops_the_archive_due_date() -> None:
    """Seed: "At any time a recruiter can close or archive a vacancy early, after which the data retention
    policy for the following part of the overall policy applies"."""
    world = World(POLICY)
    world.report(VacancyStatus.CLOSED, closed_at=CLOSED)
    archived_at = CLOSED + timedelta(days=10)

    vacancy, _ = world.report(VacancyStatus.ARCHIVED, closed_at=CLOSED, archived_at=archived_at)

    assert vacancy.archive_due is None
    assert vacancy.removal_due == archived_at.replace(month=archived_at.month + 6)


def test_an_archive_reported_after_it_was_due_counts_from_when_it_was_due() -> None:
    """Seed: "All of these limits are "upper limits" for data retention"."""
    world = World(POLICY)
    closed, _ = world.report(VacancyStatus.CLOSED, closed_at=CLOSED)
    late = closed.archive_due + timedelta(days=20)

    vacancy, _ = world.report(VacancyStatus.ARCHIVED, closed_at=CLOSED, archived_at=late)

    assert vacancy.archived_at == late
    assert vacancy.removal_due == closed.archive_due.replace(month=closed.archive_due.month + 6)


def test_removed_is_never_reported_by_the_ats() -> None:
    world = World(POLICY)

    with pytest.raises(BadRequest, match="set by the retention sweep"):
        world.report(VacancyStatus.REMOVED, closed_at=CLOSED, archived_at=CLOSED)

    assert world.store.writes == 0 and world.audit.entries == []


def test_archiving_a_vacancy_the_sweep_removed_is_a_conflict() -> None:
    world = World(POLICY)
    archived, _ = world.report(VacancyStatus.ARCHIVED, closed_at=CLOSED, archived_at=CLOSED)
    removed = archived.model_copy(
        update={"status": VacancyStatus.REMOVED, "removed_at": archived.removal_due, "version": 2}
    )
    world.store.items[("acme", "V-100")] = removed

    with pytest.raises(Conflict, match="is removed; it cannot go back to archived"):
        world.report(VacancyStatus.ARCHIVED, closed_at=CLOSED, archived_at=CLOSED + timedelta(days=1))

    assert world.store.get("acme", "V-100") == removed


def test_a_first_report_inherits_the_holds_placed_on_the_vacancy_and_later_reports_keep_them() -> None:
    """Seed 002 issue: "a legal hold stops all of it until released"."""
    world = World(POLICY)
    world.store.holds[("acme", "V-100")] = frozenset({"H-1"})

    world.report(VacancyStatus.OPEN)
    vacancy, _ = world.report(VacancyStatus.CLOSED, closed_at=CLOSED)

    assert vacancy.holds == frozenset({"H-1"})
