"""The records a person leaves in a tenant (seed 002): applications, candidate links, talent-pool registrations,
the person themself and the anonymised copy kept for reporting.

Personal data (a person's name, email and phone) lives only on `Person`, sealed under the person's own data key
(functions/retention/dal/vault.py); every other record holds the ATS's ids, dates, statuses and due dates. Apart
from the policy and vacancies (models/entities.py) so that a function that never touches a person does not build
these models on a cold start.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, ConfigDict

from functions.retention.models.entities import ApplicationOutcome, CandidateStatus
from shared.models import Model


class Application(Model):
    """An applicant's application to a vacancy: ids, stages and dates only (the person's data is on Person)."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    vacancy_id: str
    application_id: str
    person_id: str
    submitted_at: AwareDatetime
    source: str  # a channel code such as `job_board`, `referral`, `careers_site` (never a person's name)
    stages: tuple[str, ...] = ()  # stage codes reached, in order
    outcome: ApplicationOutcome = ApplicationOutcome.PENDING
    duplicate: bool = False
    from_candidate: bool = False
    holds: frozenset[str] = frozenset()
    version: int = 1


class Candidate(Model):
    """A talent-pool member matched to a vacancy. Only its link to the vacancy; membership is the registration."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    vacancy_id: str
    person_id: str
    status: CandidateStatus
    matched_at: AwareDatetime
    invited_at: AwareDatetime | None = None
    applied_at: AwareDatetime | None = None
    application_id: str | None = None  # set when the candidate applied (the seed: "updated with the notion")
    candidate_due: AwareDatetime | None = None  # only while `suggested`: invited and applied are kept
    holds: frozenset[str] = frozenset()


class Registration(Model):
    """A person's registration against a talent-pool vacancy."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    vacancy_id: str
    person_id: str
    registered_at: AwareDatetime
    registration_due: AwareDatetime
    holds: frozenset[str] = frozenset()


class PersonData(Model):
    """The personal data held about one person, in the clear (only ever in memory)."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    email: str | None = None
    phone: str | None = None


class Person(Model):
    """The person behind applications, registrations and candidates. `refs` counts the applications and
    registrations that still need the person's data: at 0 the data goes (the seed: shared data lives until the
    last one ends)."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    person_id: str
    data: PersonData
    refs: int = 0
    created_at: datetime
    updated_at: datetime
    holds: frozenset[str] = frozenset()


class AnonymisedApplication(Model):
    """What is kept of an application for reporting once its personal data is gone (docs/fingerprints.md has
    the k-anonymity reasoning): no person id, no application id, months instead of dates, closed-set codes."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    vacancy_id: str
    copy_id: str  # random, not derived from any id of the application or person
    stages: tuple[str, ...]
    outcome: ApplicationOutcome
    source: str
    submitted_month: str  # YYYY-MM
    removed_month: str  # YYYY-MM
