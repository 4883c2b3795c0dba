"""The events of legal holds and erasure: the retention domain's `RecordPurged`, declared here with the same
detail type and fields (domains do not import each other; shared/consumers.py validates against this class), and
the two this domain publishes (source `ats.messages`). Identifiers, enums and counts only.

Apart from models/events.py so that the API and ingest functions, which never consume or publish these, do not
build them on a cold start.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from functions.messages.models.holds_io import MessageHoldSubject
from shared.events import DomainEvent, Identifier

RETENTION_SOURCE = "ats.retention"


class PurgedKind(StrEnum):
    """functions/retention/models/entities.py `PurgedKind`, value for value: a value missing here would fail the
    record (and reach the DLQ, which is alarmed) rather than be skipped unnoticed."""

    PERSON = "person"
    APPLICATION = "application"
    CANDIDATE = "candidate"  # a recruiter removed a candidate from a vacancy
    REGISTRATION = "registration"  # a talent-pool registration
    VACANCY = "vacancy"


class PurgeReason(StrEnum):
    SCHEDULE = "schedule"
    SELF_ERASURE = "self_erasure"
    LEFT_TALENT_POOL = "left_talent_pool"
    CANDIDATE_REMOVED = "candidate_removed"


class RecordPurged(DomainEvent):
    """The retention domain removed a record's personal data (source `ats.retention`): copies elsewhere go too."""

    detail_type: ClassVar[str] = "RecordPurged"
    record_kind: PurgedKind
    record_id: Identifier
    vacancy_id: Identifier | None = None
    person_id: Identifier | None = None  # the ATS's person id, which messages carry as their candidate id
    reason: PurgeReason
    request_id: Identifier | None = None


class MessageHoldChanged(DomainEvent):
    """A legal hold on messages was placed (`active`) or released. The subject's id stays out: a candidate id may
    be an address, and the bus archive cannot be erased; GET /v1/message-holds/{hold_id} names it."""

    detail_type: ClassVar[str] = "MessageHoldChanged"
    hold_id: Identifier
    held_kind: MessageHoldSubject  # "subject" would read as a message subject to the bus's personal-data check
    active: bool


class MessageContentErased(DomainEvent):
    """The content of every message a `RecordPurged` covers is gone (held messages included, once released)."""

    detail_type: ClassVar[str] = "MessageContentErased"
    record_kind: PurgedKind
    record_id: Identifier
    person_id: Identifier
    vacancy_id: Identifier | None = None
    purge_event_id: Identifier
    messages: int  # the messages the purge covers: none of them keeps its content now
