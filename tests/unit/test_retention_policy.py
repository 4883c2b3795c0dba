"""The retention policy (seed 002): its bounds, who changes it, the cumulative timeline it drives, and the
recompute of due dates a change shortens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.retention.dal.policy import StalePolicy, StoredPolicy
from functions.retention.dal.recompute import DueRecord
from functions.retention.logic.policy import PERIODS, PolicyChange, change_policy, check_period, get_policy
from functions.retention.logic.recompute import finish_recompute, kinds_shortened, recompute_page
from functions.retention.logic.timeline import add_months, candidate_due, shortened, vacancy_due
from functions.retention.models.entities import (
    POLICY_BOUNDS,
    CandidateStatus,
    DueKind,
    FingerprintField,
    RetentionPolicy,
    Vacancy,
    VacancyKind,
    VacancyStatus,
)
from functions.retention.models.events import RetentionPolicyChanged
from functions.retention.models.people import Candidate
from shared import clock
from shared.audit import Outcome
from shared.auth import Actor, Role, Scope
from shared.errors import BadRequest, Conflict, Forbidden
from tests.fakes import FakeAuditLog

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DAY0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ADMIN = Actor.user("acme", "admin-1", frozenset({Role.COMPANY_ADMIN}))
SEED_EXAMPLE = {
    "candidate_months": 3,
    "registration_months": 6,
    "archive_after_months": 3,
    "keep_archived_months": 6,
    "keep_applicants_months": 3,
}


@pytest.fixture(autouse=True)
def _clock() -> Any:
    clock.freeze(NOW)
    yield
    clock.freeze(None)


# --- bounds ---------------------------------------------------------------------------------------------------


def test_the_bounds_are_exactly_the_seeds() -> None:
    """Seed: "retaining candidate records is limited to a choice of three to six months"; "between six months
    and three years from the point of their registration"; "between three months and a year *after* they've been
    closed"; "three months to three years after they've been archived"; "a further period of three months to
    three years after the archived vacancies have been removed"."""
    assert {name: (b.minimum, b.maximum) for name, b in POLICY_BOUNDS.items()} == {
        "candidate_months": (3, 6),
        "registration_months": (6, 36),
        "archive_after_months": (3, 12),
        "keep_archived_months": (3, 36),
        "keep_applicants_months": (3, 36),
    }


@pytest.mark.parametrize("name", list(POLICY_BOUNDS))
def test_each_bound_accepts_its_minimum_and_maximum_and_refuses_one_beyond_naming_the_bound(name: str) -> None:
    """Issue 11: "a value outside them gets a 400 naming the bound"."""
    bound = POLICY_BOUNDS[name]
    check_period(name, bound.minimum)
    check_period(name, bound.maximum)
    for months in (bound.minimum - 1, bound.maximum + 1):
        with pytest.raises(BadRequest) as refused:
            check_period(name, months)
        assert bound.label in refused.value.message and name in refused.value.message
        assert refused.value.details[0]["loc"] == ["body", name]
        assert refused.value.details[0]["msg"] == bound.label


# --- timeline -------------------------------------------------------------------------------------------------


def test_the_seeds_timeline_archive_at_month_3_removal_at_9_applicants_at_12() -> None:
    """Issue 11 acceptance: "A vacancy closed on day 0, with a policy of archive after 3 months, keep archived 6
    months and applicants a further 3 months: it is archived at month 3, removed at month 9, and its applicants
    removed at month 12, not a day earlier"."""
    policy = RetentionPolicy(tenant="acme", **SEED_EXAMPLE)
    dates: dict[str, Any] = {"closed_at": DAY0, "archived_at": None, "removed_at": None}

    archive = vacancy_due(policy, status=VacancyStatus.CLOSED, **dates)[DueKind.ARCHIVE]
    # a phase begins when it was due: the sweep sets archived_at = archive due, removed_at = removal due
    removal = vacancy_due(policy, status=VacancyStatus.ARCHIVED, **{**dates, "archived_at": archive})[DueKind.REMOVAL]
    applicants = vacancy_due(
        policy, status=VacancyStatus.REMOVED, **{**dates, "archived_at": archive, "removed_at": removal}
    )[DueKind.APPLICANTS]

    assert (archive, removal, applicants) == (
        datetime(2026, 4, 15, 12, 0, tzinfo=UTC),
        datetime(2026, 10, 15, 12, 0, tzinfo=UTC),
        datetime(2027, 1, 15, 12, 0, tzinfo=UTC),
    )
    assert vacancy_due(policy, status=VacancyStatus.OPEN, closed_at=None, archived_at=None, removed_at=None) == {}


def test_early_archiving_shifts_every_later_phase() -> None:
    """Seed: "At any time a recruiter can close or archive a vacancy early, after which the data retention
    policy for the following part of the overall policy applies"."""
    policy = RetentionPolicy(tenant="acme", **SEED_EXAMPLE)
    early = DAY0 + timedelta(days=14)

    removal = vacancy_due(policy, status=VacancyStatus.ARCHIVED, closed_at=DAY0, archived_at=early, removed_at=None)[
        DueKind.REMOVAL
    ]
    applicants = vacancy_due(
        policy, status=VacancyStatus.REMOVED, closed_at=DAY0, archived_at=early, removed_at=removal
    )[DueKind.APPLICANTS]

    assert removal == datetime(2026, 7, 29, 12, 0, tzinfo=UTC)
    assert applicants == datetime(2026, 10, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "due"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2027, 11, 30, tzinfo=UTC), 3, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 8, 31, tzinfo=UTC), 3, datetime(2026, 11, 30, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 36, datetime(2029, 3, 31, tzinfo=UTC)),
    ],
)
def test_months_are_calendar_months_clamped_at_the_months_end(start: datetime, months: int, due: datetime) -> None:
    assert add_months(start, months) == due


def test_invited_and_applied_candidates_have_no_candidate_limit() -> None:
    """Seed: "Candidate records that are marked as "Invited" or as "Applied" are retained regardless of the
    limit for reporting purposes"."""
    policy = RetentionPolicy(tenant="acme", candidate_months=3)

    assert candidate_due(policy, status=CandidateStatus.SUGGESTED, matched_at=DAY0) == add_months(DAY0, 3)
    assert candidate_due(policy, status=CandidateStatus.INVITED, matched_at=DAY0) is None
    assert candidate_due(policy, status=CandidateStatus.APPLIED, matched_at=DAY0) is None


def test_shortened_only_ever_brings_a_due_date_forward() -> None:
    """Issue 11: "A policy change applies to future due dates: recompute what it shortens"."""
    earlier, later = DAY0, DAY0 + timedelta(days=1)

    assert shortened(later, earlier) == earlier
    assert shortened(earlier, later) == earlier
    assert shortened(None, later) == later
    assert shortened(earlier, None) == earlier


# --- changing the policy ----------------------------------------------------------------------------------------


class FakePolicyStore:
    def __init__(self) -> None:
        self.items: dict[str, StoredPolicy] = {}
        self.race: RetentionPolicy | None = None  # saved by someone else just before the next save

    def load(self, tenant: str) -> StoredPolicy | None:
        return self.items.get(tenant)

    def save(self, policy: RetentionPolicy, *, shortened: tuple[str, ...]) -> None:
        if self.race is not None:
            self.items[self.race.tenant], self.race = StoredPolicy(self.race), None
        stored = self.items.get(policy.tenant)
        if (stored.policy.version if stored else 0) != policy.version - 1:
            raise StalePolicy(policy.tenant)
        self.items[policy.tenant] = StoredPolicy(policy, shortened)


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, events: Any) -> None:
        self.events.extend(events)


class PolicyWorld:
    def __init__(self) -> None:
        self.store = FakePolicyStore()
        self.audit = FakeAuditLog()
        self.publisher = FakePublisher()

    def change(self, actor: Actor = ADMIN, expected_version: int = 0, **overrides: Any) -> Any:
        periods = {name: POLICY_BOUNDS[name].maximum for name in PERIODS}
        periods.update({k: v for k, v in overrides.items() if k in PERIODS})
        return change_policy(
            actor,
            PolicyChange(
                periods=periods,
                fingerprint_fields=overrides.get("fingerprint_fields", [FingerprintField.EMAIL]),
                notification_url=overrides.get("notification_url"),
                expected_version=expected_version,
            ),
            store=self.store,
            audit=self.audit,
            publisher=self.publisher,
            request_id="req-1",
        )


def test_a_tenant_without_a_policy_reads_the_defaults_at_version_0() -> None:
    world = PolicyWorld()

    policy = get_policy(ADMIN, store=world.store, audit=world.audit, request_id="req-0")

    assert policy.version == 0 and policy.archive_after_months == 12
    assert [(e.action, e.outcome) for e in world.audit.entries] == [("retention:read", Outcome.ALLOWED)]


@pytest.mark.parametrize("role", [Role.COMPANY_ADMIN, Role.ACCOUNT_ADMIN])
def test_company_and_account_admins_change_the_policy_and_the_change_is_audited_and_published(role: Role) -> None:
    """Seed: "To edit your organisations data retention policies you must be have the "Company Admin" or
    "Account Admin" security role"."""
    world = PolicyWorld()

    policy, cut = world.change(Actor.user("acme", "a-1", frozenset({role})), candidate_months=4)

    assert policy.version == 1 and policy.candidate_months == 4 and cut == ("candidate_months",)
    assert world.store.items["acme"].policy == policy
    [event] = world.publisher.events
    assert isinstance(event, RetentionPolicyChanged)
    assert (event.tenant, event.policy_version, event.shortened) == ("acme", 1, ["candidate_months"])
    assert [(e.action, e.outcome, e.resource) for e in world.audit.entries] == [
        ("retention:manage", Outcome.ALLOWED, "retention-policy"),
        ("retention:policy:changed", Outcome.ALLOWED, "retention-policy/1"),
    ]


@pytest.mark.parametrize(
    "actor",
    [
        Actor.user("acme", "r-1", frozenset({Role.RECRUITER})),
        Actor.user("acme", "h-1", frozenset({Role.HR_ADMIN})),
        Actor.integration("acme", "ats-1", frozenset({Scope.RETENTION_WRITE})),
    ],
)
def test_anyone_else_is_refused_and_the_refusal_is_audited(actor: Actor) -> None:
    """Issue 11 acceptance: "A policy edit by a recruiter gets a 403"."""
    world = PolicyWorld()

    with pytest.raises(Forbidden):
        world.change(actor, candidate_months=4)

    assert world.store.items == {} and world.publisher.events == []
    assert [(e.action, e.outcome) for e in world.audit.entries] == [("retention:manage", Outcome.DENIED)]


def test_an_out_of_bounds_value_changes_nothing() -> None:
    world = PolicyWorld()

    with pytest.raises(BadRequest, match="archived vacancies are kept 3 months to 3 years after archiving"):
        world.change(keep_archived_months=37)

    assert world.store.items == {} and world.publisher.events == []


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"fingerprint_fields": []}, "at least one"),
        ({"fingerprint_fields": [FingerprintField.EMAIL, FingerprintField.EMAIL]}, "twice"),
        ({"notification_url": "http://ats.example.com/hook"}, "must use https"),
        ({"notification_url": "ftp://ats.example.com/hook"}, "must use https"),
        ({"notification_url": "https://user:pw@ats.example.com/hook"}, "credentials"),
        ({"notification_url": "https:///hook"}, "needs a host"),
        ({"notification_url": "https://ats.example.com:99999/"}, "not a valid URL"),
    ],
)
def test_fingerprint_fields_and_the_notification_url_are_checked(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(BadRequest, match=problem):
        PolicyWorld().change(**overrides)


@pytest.mark.parametrize(
    "url", ["https://ats.example.com/hooks/retention", "http://127.0.0.1:8080/hook", "http://localhost/hook"]
)
def test_https_and_local_http_notification_urls_are_accepted(url: str) -> None:
    policy, _ = PolicyWorld().change(notification_url=url)

    assert policy.notification_url == url


def test_a_stale_version_is_a_conflict_and_changes_nothing() -> None:
    world = PolicyWorld()
    world.change(candidate_months=5)

    with pytest.raises(Conflict, match="at version 1, not 0"):
        world.change(candidate_months=4)

    assert world.store.items["acme"].policy.candidate_months == 5
    assert len(world.publisher.events) == 1


def test_a_change_that_lost_the_race_is_a_conflict() -> None:
    world = PolicyWorld()
    world.store.race = RetentionPolicy(tenant="acme", candidate_months=5, version=1)

    with pytest.raises(Conflict, match="at version 1, not 0"):
        world.change(candidate_months=4)

    assert world.publisher.events == []


def test_a_retried_change_returns_what_it_wrote_and_publishes_again() -> None:
    """A publish that failed (503) is retried by the caller with the same body: the event goes out again."""
    world = PolicyWorld()
    first, cut = world.change(keep_archived_months=6)

    again, cut_again = world.change(keep_archived_months=6)

    assert again == first and cut_again == cut == ("keep_archived_months",)
    assert [e.policy_version for e in world.publisher.events] == [1, 1]


def test_lengthening_shortens_nothing() -> None:
    world = PolicyWorld()
    world.change(candidate_months=3)

    policy, cut = world.change(expected_version=1, candidate_months=6, archive_after_months=3)

    assert policy.version == 2 and cut == ("archive_after_months",)


# --- recompute ------------------------------------------------------------------------------------------------


class FakeDueStore:
    """One due kind's index in memory, paged by position."""

    def __init__(self, records: list[DueRecord]) -> None:
        self.records = records
        self.written: list[tuple[str, datetime]] = []
        self.changed_meanwhile: set[str] = set()

    def page(self, tenant: str, kind: DueKind, cursor: str | None, limit: int) -> tuple[list[DueRecord], str | None]:
        start = int(cursor or 0)
        end = start + limit
        return self.records[start:end], str(end) if end < len(self.records) else None

    def bring_forward(self, record: DueRecord, kind: DueKind, due: datetime) -> bool:
        if record.key["id"] in self.changed_meanwhile:
            return False
        self.written.append((record.key["id"], due))
        return True


def _closed(vacancy_id: str, closed_at: datetime, archive_after: int) -> DueRecord:
    vacancy = Vacancy(
        tenant="acme",
        vacancy_id=vacancy_id,
        kind=VacancyKind.STANDARD,
        status=VacancyStatus.CLOSED,
        opened_at=closed_at - timedelta(days=30),
        closed_at=closed_at,
        reported_at=closed_at,
        version=2,
        archive_due=add_months(closed_at, archive_after),
    )
    assert vacancy.archive_due is not None
    return DueRecord(entity=vacancy, due=vacancy.archive_due, key={"id": vacancy_id}, stored_due="")


def test_a_recompute_brings_forward_only_what_the_new_policy_makes_earlier() -> None:
    """Issue 11: "A policy change applies to future due dates: recompute what it shortens, and report it"."""
    # V-1 was closed under a 12-month policy; V-2 under a 3-month one (its due is already earlier)
    store = FakeDueStore([_closed("V-1", DAY0, 12), _closed("V-2", DAY0, 3)])
    policy = RetentionPolicy(tenant="acme", archive_after_months=6)

    page = recompute_page("acme", DueKind.ARCHIVE, policy, None, store=store)

    assert (page.changed, page.examined, page.cursor) == (1, 2, None)
    assert store.written == [("V-1", add_months(DAY0, 6))]


def test_a_recompute_pages_and_skips_records_changed_meanwhile() -> None:
    store = FakeDueStore([_closed(f"V-{i}", DAY0, 12) for i in range(5)])
    store.changed_meanwhile = {"V-3"}
    policy = RetentionPolicy(tenant="acme", archive_after_months=3)

    first = recompute_page("acme", DueKind.ARCHIVE, policy, None, store=store, limit=3)
    second = recompute_page("acme", DueKind.ARCHIVE, policy, first.cursor, store=store, limit=3)

    assert (first.changed, first.cursor, second.changed, second.cursor) == (3, "3", 1, None)


def test_a_candidate_recompute_leaves_invited_candidates_alone() -> None:
    invited = Candidate(
        tenant="acme", vacancy_id="V-1", person_id="P-1", status=CandidateStatus.INVITED, matched_at=DAY0
    )
    store = FakeDueStore([DueRecord(entity=invited, due=add_months(DAY0, 6), key={"id": "P-1"}, stored_due="")])

    page = recompute_page(
        "acme", DueKind.CANDIDATE, RetentionPolicy(tenant="acme", candidate_months=3), None, store=store
    )

    assert page.changed == 0 and store.written == []


def test_the_shortened_periods_name_the_kinds_to_recompute() -> None:
    assert kinds_shortened(["keep_archived_months", "candidate_months"]) == [DueKind.REMOVAL, DueKind.CANDIDATE]
    assert kinds_shortened([]) == []


def test_a_finished_recompute_is_reported_once_and_audited_by_its_job() -> None:
    class Reports:
        def __init__(self) -> None:
            self.bodies: dict[str, Any] = {}

        def put_once(self, key: str, body: dict[str, Any]) -> bool:
            return self.bodies.setdefault(key, body) is body

    reports, audit = Reports(), FakeAuditLog()

    key = finish_recompute("acme", 3, {"archive": 2}, {"archive": 5}, reports=reports, audit=audit)

    assert key == "retention/policy-changes/acme/3.json"
    assert reports.bodies[key]["shortened"] == {"archive": 2}
    [entry] = audit.entries
    assert (entry.actor, entry.action, entry.resource) == (
        "system:retention-recompute",
        "retention.recompute",
        "retention-policy/3",
    )
