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
    reported_at: datetime = Field(description="When the last accepted change was reported (service clock)")
    version: int = Field(description="Accepted changes so far; an identical repeat does not count")
