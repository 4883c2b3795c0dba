"""Request and response models of the records routes: applications, candidates, talent-pool registrations.

Responses carry ids, codes, statuses and dates only: personal data goes in (sealed at once) and never comes out
of these routes (the applicant's own subject-access export is the one way out).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, ConfigDict, Field

from functions.retention.models.entities import ApplicationOutcome, CandidateStatus
from shared.models import Model

_CODE = r"^[a-z0-9_-]{1,32}$"


class PersonInput(Model):
    """The person's data as the ATS holds it. Sealed under the person's own key as soon as it arrives."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="The person's name")
    email: str = Field(min_length=3, max_length=320, description="The person's email address")
    phone: str | None = Field(
        default=None, min_length=3, max_length=40, description="A phone number, international (+...) or national"
    )
    phone_region: str = Field(
        default="GB",
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 country a national phone number (no +) belongs to; default GB",
    )


class ApplicationSubmission(Model):
    model_config = ConfigDict(extra="forbid")

    person_id: str = Field(description="The ATS's id of the applicant")
    person: PersonInput
    submitted_at: AwareDatetime = Field(description="When the applicant applied")
    source: str = Field(pattern=_CODE, description="Channel code, e.g. `job_board`, `referral`")
    stages: list[str] = Field(default_factory=list, max_length=50, description="Stage codes reached, in order")
    outcome: ApplicationOutcome = ApplicationOutcome.PENDING
    candidate: bool | None = Field(
        default=None,
        description=(
            "Informational: whether the ATS knows the applicant as a candidate of this vacancy. The service finds "
            "the candidate record itself, by the person id."
        ),
    )


class ApplicationOutput(Model):
    vacancy_id: str
    application_id: str
    person_id: str
    submitted_at: datetime
    source: str
    stages: list[str]
    outcome: ApplicationOutcome
    duplicate: bool = Field(description="The applicant's fingerprint matched one already stored for the vacancy")
    from_candidate: bool = Field(description="The applicant was a candidate of the vacancy")
    under_legal_hold: bool
    version: int = Field(description="Accepted changes so far; an identical repeat does not count")


class CandidateReportStatus(StrEnum):
    """What the ATS may report; `applied` is set by an application."""

    SUGGESTED = "suggested"
    INVITED = "invited"
    REMOVED = "removed"
    APPLIED = "applied"  # accepted by the schema so that the route can answer 400 with the reason


class CandidateReport(Model):
    model_config = ConfigDict(extra="forbid")

    status: CandidateReportStatus = Field(description="suggested, invited or removed (never applied)")
    matched_at: AwareDatetime = Field(description="When the talent-pool search matched the person to the vacancy")


class CandidateOutput(Model):
    vacancy_id: str
    person_id: str
    status: CandidateStatus
    matched_at: datetime | None
    invited_at: datetime | None = None
    applied_at: datetime | None = None
    application_id: str | None = None
    candidate_due: datetime | None = Field(default=None, description="When the link goes (suggested only)")
    under_legal_hold: bool = False


class RegistrationReport(Model):
    model_config = ConfigDict(extra="forbid")

    registered_at: AwareDatetime
    person: PersonInput


class RegistrationOutput(Model):
    vacancy_id: str
    person_id: str
    registered_at: datetime
    registration_due: datetime
    under_legal_hold: bool
