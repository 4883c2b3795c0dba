"""Domain events of the retention domain (identifiers and enums only: the bus archive cannot be erased)."""

from __future__ import annotations

from typing import ClassVar

from functions.retention.models.entities import VacancyKind, VacancyStatus
from shared.events import DomainEvent, Identifier


class VacancyChanged(DomainEvent):
    """The ATS reported a new vacancy, or a change to one (a later phase, or corrected dates)."""

    detail_type: ClassVar[str] = "VacancyChanged"

    vacancy_id: Identifier
    kind: VacancyKind
    status: VacancyStatus
    previous_status: VacancyStatus | None = None
    revision: int  # the vacancy's version after this change
