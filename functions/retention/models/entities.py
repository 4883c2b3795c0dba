"""Entities of the retention domain (seed 002): the tenant's policy and the vacancies whose timeline it sets.

The enums every part of the domain shares are here too. A person's records are in models/people.py and legal holds
in models/holds.py, so that a function builds on a cold start only the models it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, ConfigDict, Field

from shared.models import Model

VACANCY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
RECORD_ID_PATTERN = VACANCY_ID_PATTERN  # the ATS's ids of applications, people, holds: the same form


class VacancyKind(StrEnum):
    STANDARD = "standard"
    TALENT_POOL = "talent_pool"


class VacancyStatus(StrEnum):
    """The vacancy's lifecycle; each phase only moves forward. `removed` is set by the sweep, never reported."""

    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"
    REMOVED = "removed"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {VacancyStatus.OPEN: 0, VacancyStatus.CLOSED: 1, VacancyStatus.ARCHIVED: 2, VacancyStatus.REMOVED: 3}


class DueKind(StrEnum):
    """What a due date triggers. Each kind has its own attribute on the record and its own sparse index."""

    ARCHIVE = "archive"  # a closed vacancy is archived
    REMOVAL = "removal"  # an archived vacancy is removed (and its fingerprints with it)
    APPLICANTS = "applicants"  # a removed vacancy's applicants, candidates and copies go: the end of its timeline
    CANDIDATE = "candidate"  # a suggested candidate's link to the vacancy goes
    REGISTRATION = "registration"  # a talent-pool registration goes

    @property
    def attribute(self) -> str:
        return f"{self.value}_due"

    @property
    def index_name(self) -> str:
        return _INDEXES[self]


_INDEXES = {
    DueKind.ARCHIVE: "ArchiveDue",
    DueKind.REMOVAL: "RemovalDue",
    DueKind.APPLICANTS: "ApplicantsDue",
    DueKind.CANDIDATE: "CandidateDue",
    DueKind.REGISTRATION: "RegistrationDue",
}


class FingerprintField(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


@dataclass(frozen=True)
class Bound:
    """The seed's range for one period, in months (a dataclass: no model to build on import, a cold start)."""

    minimum: int
    maximum: int
    label: str


# Seed 002, exactly. The maximum of each is the default: every limit is an upper limit, and a tenant shortens it.
POLICY_BOUNDS: dict[str, Bound] = {
    "candidate_months": Bound(minimum=3, maximum=6, label="candidates are kept 3 to 6 months"),
    "registration_months": Bound(
        minimum=6, maximum=36, label="talent-pool registrations are kept 6 months to 3 years from registration"
    ),
    "archive_after_months": Bound(
        minimum=3, maximum=12, label="vacancies are archived 3 months to 1 year after closing"
    ),
    "keep_archived_months": Bound(
        minimum=3, maximum=36, label="archived vacancies are kept 3 months to 3 years after archiving"
    ),
    "keep_applicants_months": Bound(
        minimum=3,
        maximum=36,
        label="applicants are kept a further 3 months to 3 years after their archived vacancy is removed",
    ),
}


class RetentionPolicy(Model):
    """A tenant's retention policy: one period per phase, each within its bound (checked by logic/policy.py)."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    candidate_months: int = POLICY_BOUNDS["candidate_months"].maximum
    registration_months: int = POLICY_BOUNDS["registration_months"].maximum
    archive_after_months: int = POLICY_BOUNDS["archive_after_months"].maximum
    keep_archived_months: int = POLICY_BOUNDS["keep_archived_months"].maximum
    keep_applicants_months: int = POLICY_BOUNDS["keep_applicants_months"].maximum
    fingerprint_fields: tuple[FingerprintField, ...] = (FingerprintField.EMAIL,)
    notification_url: str | None = None  # where the ATS is told of removals (signed webhook); None: bus only
    version: int = 0  # 0: never set, the defaults apply
    updated_at: datetime | None = None
    updated_by: str | None = None


class Vacancy(Model):
    """A tenant's vacancy, keyed by the ATS's own id. `version` counts accepted changes (optimistic locking)."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    vacancy_id: str = Field(pattern=VACANCY_ID_PATTERN)
    kind: VacancyKind
    status: VacancyStatus
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    archived_at: AwareDatetime | None = None
    removed_at: AwareDatetime | None = None
    reported_at: datetime
    version: int = Field(ge=1)
    archive_due: AwareDatetime | None = None
    removal_due: AwareDatetime | None = None
    applicants_due: AwareDatetime | None = None
    holds: frozenset[str] = frozenset()

    def same_facts(self, other: Vacancy) -> bool:
        """Whether `other` reports exactly what this vacancy already holds (an idempotent repeat)."""
        fields = ("kind", "status", "opened_at", "closed_at", "archived_at")
        return all(getattr(self, f) == getattr(other, f) for f in fields)


class ApplicationOutcome(StrEnum):
    PENDING = "pending"
    HIRED = "hired"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class CandidateStatus(StrEnum):
    SUGGESTED = "suggested"
    INVITED = "invited"
    APPLIED = "applied"
    REMOVED = "removed"


class HoldSubject(StrEnum):
    PERSON = "person"
    APPLICATION = "application"
    VACANCY = "vacancy"


class PurgedKind(StrEnum):
    PERSON = "person"
    APPLICATION = "application"
    CANDIDATE = "candidate"
    REGISTRATION = "registration"
    VACANCY = "vacancy"


class PurgeReason(StrEnum):
    SCHEDULE = "schedule"  # the daily sweep, by the tenant's policy
    SELF_ERASURE = "self_erasure"  # the applicant erased themselves
    LEFT_TALENT_POOL = "left_talent_pool"  # the person left the talent pool
    CANDIDATE_REMOVED = "candidate_removed"  # a recruiter removed a candidate's link
