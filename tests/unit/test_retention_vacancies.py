"""The ATS reports its vacancies: idempotent on its id, phases only forward, reads confined to the caller's tenant
(seed 002: the timeline is cumulative, so a vacancy never re-opens)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from functions.retention.logic.vacancies import get_vacancy, report_vacancy
from functions.retention.models.entities import VacancyKind, VacancyStatus
from functions.retention.models.input import VacancyReport
from shared import clock
from shared.audit import Outcome
from shared.auth import Actor, Role, Scope
from shared.errors import BadRequest, Conflict, Forbidden, NotFound
from tests.fakes import FakeAuditLog, FakeVacancyStore

OPENED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CLOSED = OPENED + timedelta(days=30)
ATS = Actor.integration("acme", "ats-client-1", frozenset({Scope.RETENTION_WRITE}))


@pytest.fixture(autouse=True)
def _clock() -> Any:
    clock.freeze(datetime(2026, 3, 1, tzinfo=UTC))
    yield
    clock.freeze(None)


class World:
    def __init__(self) -> None:
        self.store = FakeVacancyStore()
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
    assert world.store.get("acme", "V-100").status is VacancyStatus.CLOSED


def test_a_vacancy_never_goes_back_to_an_earlier_phase() -> None:
    world = World()
    world.report(VacancyStatus.CLOSED, closed_at=CLOSED)

    with pytest.raises(Conflict, match="is closed; it cannot go back to open"):
        world.report(VacancyStatus.OPEN)

    assert world.store.get("acme", "V-100").status is VacancyStatus.CLOSED
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
