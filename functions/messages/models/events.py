"""Domain events of the messages domain (source `ats.messages`): identifiers and codes only, never personal data."""

from __future__ import annotations

from typing import ClassVar

from functions.messages.models.message import Channel, Direction, Status
from shared.events import DomainEvent, Identifier

SOURCE = "ats.messages"


class MessageRecorded(DomainEvent):
    """A message the service had not seen is stored (any channel, either direction)."""

    detail_type: ClassVar[str] = "MessageRecorded"
    message_id: Identifier
    channel: Channel
    direction: Direction
    status: Status
    candidate_id: Identifier | None = None
    requisition_id: Identifier | None = None


class DeliveryFailed(DomainEvent):
    """A message failed for good (a hard bounce, a rejected or undeliverable SMS): the ATS may try another
    channel. `attempts` counts the retries and failures the providers reported."""

    detail_type: ClassVar[str] = "DeliveryFailed"
    message_id: Identifier
    channel: Channel
    status: Status
    attempts: int
    reason_code: Identifier | None = None  # the provider's code (bounce type, error code), sanitised
    candidate_id: Identifier | None = None
    requisition_id: Identifier | None = None
