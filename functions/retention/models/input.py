"""Request models of the retention routes (the handler layer owns them)."""

from __future__ import annotations

from typing import Self

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from functions.retention.models.entities import VacancyKind, VacancyStatus
from shared.models import Model


class VacancyReport(Model):
    """What the ATS reports about one of its vacancies. Dates are the ATS's, with a time zone."""

    model_config = ConfigDict(extra="forbid")

    kind: VacancyKind = Field(default=VacancyKind.STANDARD, description="`talent_pool` for talent-pool vacancies")
    status: VacancyStatus = Field(
        description="Where the vacancy is in its lifecycle; it only moves forward. `removed` is the sweep's (400)"
    )
    opened_at: AwareDatetime = Field(description="When the vacancy opened")
    closed_at: AwareDatetime | None = Field(default=None, description="Required once `closed` or `archived`")
    archived_at: AwareDatetime | None = Field(default=None, description="Required once `archived`")

    @model_validator(mode="after")
    def _dates_follow_the_status(self) -> Self:
        if self.status is VacancyStatus.REMOVED:
            return self  # never reported: the use case refuses it with a 400 that says why
        closed = self.status in (VacancyStatus.CLOSED, VacancyStatus.ARCHIVED)
        if closed != (self.closed_at is not None):
            raise ValueError("closed_at is required when the status is closed or archived, and only then")
        if (self.status is VacancyStatus.ARCHIVED) != (self.archived_at is not None):
            raise ValueError("archived_at is required when the status is archived, and only then")
        if self.closed_at is not None and self.closed_at < self.opened_at:
            raise ValueError("closed_at is before opened_at")
        if self.archived_at is not None and self.closed_at is not None and self.archived_at < self.closed_at:
            raise ValueError("archived_at is before closed_at")
        return self
