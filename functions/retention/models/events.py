"""Domain events of the retention domain (source `ats.retention`): identifiers only, never personal data."""

from __future__ import annotations

from typing import ClassVar

from functions.retention.models.entities import PurgedKind, PurgeReason
from shared.events import DomainEvent, Identifier

SOURCE = "ats.retention"


class RetentionPolicyChanged(DomainEvent):
    detail_type: ClassVar[str] = "RetentionPolicyChanged"
    policy_version: int
    shortened: list[Identifier]  # the periods that got shorter (their due dates are recomputed)


class ApplicationReceived(DomainEvent):
    detail_type: ClassVar[str] = "ApplicationReceived"
    vacancy_id: Identifier
    application_id: Identifier
    duplicate: bool
    from_candidate: bool


class DuplicateApplicationDetected(DomainEvent):
    detail_type: ClassVar[str] = "DuplicateApplicationDetected"
    vacancy_id: Identifier
    application_id: Identifier
    key_version: Identifier  # the fingerprint key version that matched (the fingerprint itself stays here)


class RecordPurged(DomainEvent):
    """A record's personal data is gone from this service: other domains and the ATS remove their copies."""

    detail_type: ClassVar[str] = "RecordPurged"
    record_kind: PurgedKind
    record_id: Identifier
    vacancy_id: Identifier | None = None
    person_id: Identifier | None = None
    reason: PurgeReason
    request_id: Identifier | None = None  # the subject request or sweep run that removed it


class LegalHoldChanged(DomainEvent):
    detail_type: ClassVar[str] = "LegalHoldChanged"
    hold_id: Identifier
    held_kind: Identifier  # person, application or vacancy
    held_id: Identifier
    vacancy_id: Identifier | None = None  # for an application
    active: bool
