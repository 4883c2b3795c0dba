"""Response models of the message routes (the request body of a recorded message is models/record_io.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from functions.messages.models.message import Channel, Direction, Status
from functions.messages.models.policy import TIER_RULE, ContentMode, Tier
from shared.models import Model


class MessagePartyOutput(Model):
    address: str
    name: str | None = None


class MessageAttemptOutput(Model):
    status: Status
    at: datetime
    provider: str
    provider_event: str = Field(description="The provider's own name for the event")
    detail: str | None = Field(default=None, description="The provider's code (bounce type, error code)")
    attempt: int | None = None
    permanent: bool = False


class MessageContentOutput(Model):
    subject: str | None = None
    body: str | None = None


class MessageOutput(Model):
    message_id: str
    channel: Channel
    direction: Direction
    provider: str
    provider_message_id: str = Field(description="The provider's id of the message (the ATS's for recorded ones)")
    status: Status
    first_at: datetime
    last_at: datetime
    candidate_id: str | None = None
    requisition_id: str | None = None
    thread_id: str | None = None
    rfc_message_id: str | None = None
    in_reply_to: str | None = None
    sender: MessagePartyOutput | None = None
    recipients: list[MessagePartyOutput] = []
    attempts: int = Field(description="Retries and failures the providers reported")
    history: list[MessageAttemptOutput] = Field(description="Every provider event, in lifecycle order")
    content: MessageContentOutput | None = Field(
        default=None, description="Only for a reader holding messages:content:read, and only when content is kept"
    )
    content_kept: bool = Field(description="Whether the message's content is stored (sealed)")
    redacted_at: datetime | None = None
    on_hold: bool = False
    tier: Tier = Field(
        default=Tier.HOT,
        description=(
            "`hot`: stored whole; `warm`, `cold`: archived by the tenant's policy (S3 Standard-IA, Glacier Instant "
            "Retrieval). Reading one message by id reads an archived one back whole (its content for "
            "`messages:content:read`); a search lists it without content"
        ),
    )


class MessagePage(Model):
    messages: list[MessageOutput]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null at the end")


class ThreadOutput(Model):
    thread_id: str
    messages: list[MessageOutput]
    next_cursor: str | None = None


class MessagePolicyOutput(Model):
    content: ContentMode
    warm_after_days: int = Field(description="Days after its first event when a message moves to the warm tier")
    cold_after_days: int = Field(description="Days after its first event when a message moves to the cold tier")
    delete_after_days: int = Field(description="Days after its first event when a message is deleted, unless held")
    version: int
    updated_at: datetime | None = None
    updated_by: str | None = None


class MessagePolicyUpdate(Model):
    model_config = ConfigDict(extra="forbid")

    content: ContentMode = Field(description="`metadata`: ids, parties, statuses, times only; `full`: content too")
    warm_after_days: int | None = Field(default=None, description=f"Omitted: unchanged. {TIER_RULE}")
    cold_after_days: int | None = Field(default=None, description=f"Omitted: unchanged. {TIER_RULE}")
    delete_after_days: int | None = Field(default=None, description=f"Omitted: unchanged. {TIER_RULE}")
    version: int = Field(ge=0, description="The version read (optimistic locking); 0 when none was set")
