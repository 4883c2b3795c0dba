"""Response models of the retention routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from functions.retention.models.entities import VacancyKind, VacancyStatus
from shared.models import Model


class VacancyOutput(Model):
    vacancy_id: str = Field(description="The ATS's id of the vacancy")
    kind: VacancyKind
    status: VacancyStatus
    opened_at: datetime
    closed_at: datetime | None
    archived_at: datetime | None
    removed_at: datetime | None = Field(description="When the retention sweep removed it (the removal due date)")
    reported_at: datetime = Field(description="When the last accepted change was reported (service clock)")
    version: int = Field(description="Accepted changes so far; an identical repeat does not count")
    archive_due: datetime | None = Field(description="While closed: when it is archived under the retention policy")
    removal_due: datetime | None = Field(description="While archived: when it is removed under the retention policy")
    applicants_due: datetime | None = Field(
        description="Once removed: when its applicants, candidates and anonymised copies go"
    )
    holds: int = Field(description="Active legal holds on the vacancy; the sweep leaves it alone while any is active")
