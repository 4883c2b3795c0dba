"""Legal holds (GDPR Art. 17(3)(e)): the stored hold and the models of the legal-hold routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, ConfigDict, Field

from functions.retention.models.entities import HoldSubject
from shared.models import Model


class LegalHold(Model):
    model_config = ConfigDict(frozen=True)

    tenant: str
    hold_id: str
    subject_kind: HoldSubject
    subject_id: str  # the person, vacancy or application id
    vacancy_id: str | None = None  # an application's vacancy (an application id is unique within its vacancy)
    reason: str
    owner: str
    review_at: AwareDatetime
    placed_at: datetime
    placed_by: str
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None


class HoldInput(Model):
    """A legal hold on one person, application or vacancy (GDPR Art. 17(3)(e): kept for legal claims)."""

    model_config = ConfigDict(extra="forbid")

    subject_kind: HoldSubject = Field(description="What is held: a person, an application or a vacancy")
    subject_id: str = Field(min_length=1, max_length=128, description="The ATS's id of the held record")
    vacancy_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="The application's vacancy (applications only)"
    )
    reason: str = Field(min_length=1, max_length=500, description="Why the record is held (no personal data)")
    owner: str = Field(min_length=1, max_length=128, description="Who answers for the hold (a role or team)")
    review_at: AwareDatetime = Field(description="When the hold is to be reviewed; in the future")


class ReleaseInput(Model):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="Why the hold ends")


class HoldOutput(Model):
    hold_id: str
    subject_kind: HoldSubject
    subject_id: str
    vacancy_id: str | None = None
    reason: str
    owner: str
    review_at: datetime
    placed_at: datetime
    placed_by: str
    active: bool
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None
    records_held: int | None = Field(default=None, description="Records that carry the hold (place/release only)")


class HoldPage(Model):
    holds: list[HoldOutput]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null at the end")
