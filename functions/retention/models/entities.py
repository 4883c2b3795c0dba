"""Entities of the retention domain: what the ATS reports to us about its records, and nothing personal."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, ConfigDict, Field

from shared.models import Model

VACANCY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class VacancyKind(StrEnum):
    STANDARD = "standard"
    TALENT_POOL = "talent_pool"


class VacancyStatus(StrEnum):
    """The vacancy's lifecycle as the ATS reports it; each phase only moves forward."""

    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {VacancyStatus.OPEN: 0, VacancyStatus.CLOSED: 1, VacancyStatus.ARCHIVED: 2}


class Vacancy(Model):
    """A tenant's vacancy, keyed by the ATS's own id.

    `version` counts accepted changes (optimistic locking).
    """

    model_config = ConfigDict(frozen=True)

    tenant: str
    vacancy_id: str = Field(pattern=VACANCY_ID_PATTERN)
    kind: VacancyKind
    status: VacancyStatus
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    archived_at: AwareDatetime | None = None
    reported_at: datetime
    version: int = Field(ge=1)

    def same_facts(self, other: Vacancy) -> bool:
        """Whether `other` reports exactly what this vacancy already holds (an idempotent repeat)."""
        fields = ("kind", "status", "opened_at", "closed_at", "archived_at")
        return all(getattr(self, f) == getattr(other, f) for f in fields)
