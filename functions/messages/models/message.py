"""One message model across email, SMS, in-app, portal and Teams (seed 000), and the normalised provider event.

Every provider's payload (Amazon SES, Twilio, SendGrid, Microsoft Graph, captured SMTP, the ATS's own API) is
turned into `ProviderEvent`s by `functions/messages/logic/providers/`; the ingest consumer applies them to the
`Message` they name. docs/messages.md maps each provider's event names to `Status`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    IN_APP = "in_app"
    PORTAL = "portal"  # a notification in the candidate portal
    TEAMS = "teams"


class Direction(StrEnum):
    OUTBOUND = "outbound"  # to the candidate
    INBOUND = "inbound"  # from the candidate


class Provider(StrEnum):
    SES = "ses"
    TWILIO = "twilio"
    SENDGRID = "sendgrid"
    GRAPH = "graph"  # Microsoft Graph: Teams chat and channel messages
    SMTP = "smtp"  # raw MIME captured by SES receiving or an SMTP relay
    ATS = "ats"  # recorded by the ATS through the API


class Status(StrEnum):
    """The one lifecycle. `rank` orders it: an event never moves a message to a lower rank (out-of-order delivery),
    except that a terminal failure ends a message that was never delivered."""

    QUEUED = "queued"
    SENT = "sent"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    OPENED = "opened"  # opened (email) or read (SMS, in-app, Teams)
    CLICKED = "clicked"
    REPLIED = "replied"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def failure(self) -> bool:
        return self in _FAILURES


# Lifecycle order. Failures rank above delivery progress (a bounce after `sent` ends it); engagement (opened,
# clicked, replied) proves delivery, so it ranks above the failures a provider may report late; complaints and
# unsubscribes come last (the recipient acted on a delivered message).
_RANK = {
    Status.QUEUED: 0,
    Status.SENT: 1,
    Status.DELAYED: 2,
    Status.DELIVERED: 3,
    Status.UNDELIVERED: 4,
    Status.FAILED: 4,
    Status.BOUNCED: 4,
    Status.OPENED: 5,
    Status.CLICKED: 6,
    Status.REPLIED: 7,
    Status.COMPLAINED: 8,
    Status.UNSUBSCRIBED: 8,
}
_FAILURES = frozenset({Status.BOUNCED, Status.FAILED, Status.UNDELIVERED})


@dataclass(frozen=True)
class Party:
    """A sender or recipient: an address (email, E.164 phone, Teams user id) and an optional display name."""

    address: str
    name: str | None = None


@dataclass(frozen=True)
class ProviderEvent:
    """One thing a provider reported about one message, normalised.

    `event_id` is the provider's own id for this event (SendGrid `sg_event_id`, SES `mail.messageId` + event
    type + timestamp, Twilio `MessageSid` + `MessageStatus`, Graph notification id + change type, the MIME
    Message-ID): applying the same `event_id` twice is a no-op. `message_key` names the message the event belongs
    to, the same for every event of one message from one provider (SES `mail.messageId`, Twilio `MessageSid`,
    SendGrid `sg_message_id` up to its first '.', Graph resource id, the MIME Message-ID, the ATS's message id).
    """

    provider: Provider
    event_id: str
    message_key: str
    channel: Channel
    direction: Direction
    status: Status
    occurred_at: datetime  # aware, UTC
    provider_event: str  # the provider's own name for the event: "Delivery", "delivered", "bounce", "created", ...
    rfc_message_id: str | None = None  # RFC 5322 Message-ID, without the angle brackets
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    conversation_id: str | None = None  # Graph chat or channel id; Twilio conversation; else derived from refs
    sender: Party | None = None
    recipients: tuple[Party, ...] = ()
    subject: str | None = None
    body: str | None = None  # plain text; None when the provider does not carry it (status callbacks)
    candidate_id: str | None = None  # from the ATS's tags, custom args or headers, when the provider carries them
    requisition_id: str | None = None
    permanent: bool = False  # a failure the provider will not retry (hard bounce, Twilio 30003..)
    detail: str | None = None  # bounce type, SMTP response, error code: ids and codes, never personal data
    attempt: int | None = None  # the provider's attempt number for a retry or a delay
    tags: dict[str, str] = field(default_factory=dict)  # the provider's tags / custom args, ids only


@dataclass(frozen=True)
class HistoryEntry:
    """One provider event as the message keeps it: ids, codes and times; never addresses or content."""

    event_id: str
    status: Status
    at: datetime
    provider: str
    provider_event: str
    detail: str | None = None
    attempt: int | None = None
    permanent: bool = False


@dataclass
class MessageState:
    """A message as stored. Content (subject, body) is held sealed (`sealed_subject`, `sealed_body`: FieldCipher
    values bound to the message id); `content_hash` stays after a redaction. An archived message's item is a stub
    (`tier`, and `archive_key` when it had content to move): everything but its content."""

    tenant: str
    message_id: str
    channel: Channel
    direction: Direction
    provider: str
    message_key: str
    status: Status
    first_at: datetime
    last_at: datetime
    history: list[HistoryEntry] = field(default_factory=list)
    rfc_message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    thread_id: str | None = None
    candidate_id: str | None = None
    requisition_id: str | None = None
    sender: Party | None = None
    recipients: tuple[Party, ...] = ()
    sealed_subject: str | None = None
    sealed_body: str | None = None
    content_hash: str | None = None
    redacted_at: datetime | None = None
    holds: frozenset[str] = frozenset()
    dropped_events: int = 0
    version: int = 0  # 0: not stored yet
    # None: hot (the whole message in DynamoDB); "warm" or "cold" (models/policy.py `Tier`): the item is a stub
    # without content, and the whole message the archive object `archive_key` (functions/messages/logic/tiers.py).
    tier: str | None = None
    archive_key: str | None = None

    @property
    def event_ids(self) -> set[str]:
        return {entry.event_id for entry in self.history}

    @property
    def attempts(self) -> int:
        """Delivery attempts the providers reported: retries (delays, deferrals) and failures."""
        return sum(1 for e in self.history if e.status is Status.DELAYED or e.status.failure)


class MalformedPayload(ValueError):
    """A payload that verified but does not parse as the provider's format: refused with a 400, stored nowhere."""
