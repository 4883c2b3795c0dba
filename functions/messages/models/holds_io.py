"""Legal holds on messages, redaction and erasure: the stored hold and the held-back erasure (entities of
logic/holds.py and logic/erasure.py), and the bodies and answers of the routes of handlers/holds_api.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, ConfigDict, Field

from shared.models import Model

# A hold id is the ATS's (or the compliance officer's) name for the hold, like the retention domain's.
HOLD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
# The ids messages are recorded with (models/record_io.py `ID_PATTERN`), so a hold can name any stored candidate,
# requisition or message; repeated here so the holds function does not load the recording models.
SUBJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$"


class MessageHoldSubject(StrEnum):
    MESSAGE = "message"  # one message, by its id
    CANDIDATE = "candidate"  # every message of a candidate, those stored later included
    REQUISITION = "requisition"  # every message of a requisition, those stored later included


@dataclass(frozen=True)
class MessageHold:
    """A legal hold as stored. `messages_held` counts the messages its last fan-out marked; `fanout_cursor` is
    where a fan-out stopped on its time budget (None once it went through), so a repeat of the request goes on."""

    tenant: str
    hold_id: str
    subject_kind: MessageHoldSubject
    subject_id: str
    reason: str
    owner: str
    review_at: datetime
    placed_at: datetime
    placed_by: str
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None
    messages_held: int = 0
    fanout_cursor: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def covers(self, message_id: str, candidate_id: str | None, requisition_id: str | None) -> bool:
        """Whether the hold covers a message with these ids (active or not: the caller decides)."""
        if self.subject_kind is MessageHoldSubject.MESSAGE:
            return self.subject_id == message_id
        if self.subject_kind is MessageHoldSubject.CANDIDATE:
            return self.subject_id == candidate_id
        return self.subject_id == requisition_id


@dataclass(frozen=True)
class PendingErasure:
    """An erasure that legal holds kept from finishing: the purge it answers, the messages it covers (a person's,
    or a person's in one vacancy) and the holds that kept some of them. Run again when one of those is released."""

    tenant: str
    record_kind: str
    record_id: str
    person_id: str
    vacancy_id: str | None
    purge_event_id: str
    holds: frozenset[str]
    messages_held: int
    at: datetime


class MessageHoldInput(Model):
    """A legal hold on one message, or on every message of a candidate or a requisition."""

    model_config = ConfigDict(extra="forbid")

    subject_kind: MessageHoldSubject = Field(description="What is held: one message, a candidate's or a requisition's")
    subject_id: str = Field(pattern=SUBJECT_ID_PATTERN, description="The message, candidate or requisition id")
    reason: str = Field(min_length=1, max_length=500, description="Why the messages are held (no personal data)")
    owner: str = Field(min_length=1, max_length=128, description="Who answers for the hold (a role or team)")
    review_at: AwareDatetime = Field(description="When the hold is to be reviewed; in the future")


class MessageReleaseInput(Model):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="Why the hold ends")


class MessageHoldOutput(Model):
    hold_id: str
    subject_kind: MessageHoldSubject
    subject_id: str
    reason: str
    owner: str
    review_at: datetime
    placed_at: datetime
    placed_by: str
    active: bool
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None
    messages_held: int = Field(description="Messages the hold's last fan-out marked (0 once released)")
    fanout_complete: bool = Field(
        description="False when marking the messages stopped on its time budget: repeat the request to go on"
    )


class MessageHoldPage(Model):
    holds: list[MessageHoldOutput]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null at the end")


class RedactionInput(Model):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1, max_length=500, description="The disclosure request it answers (a reference, no personal data)"
    )


class RedactionOutput(Model):
    message_id: str
    redacted_at: datetime
    content_hash: str | None = Field(
        default=None, description="SHA-256 of the removed subject and body (kept from ingest), when content was kept"
    )
    content_removed: bool = Field(description="Whether this request removed content (false: none kept, or gone)")
    terms_removed: int = Field(description="Search-term items deleted with the content")
