"""Request bodies of the ATS's record-a-message routes: one message, or a batch of up to 100.

The ATS records every message it sends or receives on any channel (email, SMS, in-app, portal, Teams). When it
sent the message through a provider (SES, SendGrid, Twilio, Graph, its own SMTP relay) it names the provider and
the provider's id of the message, so the provider's delivery events land on the same message
(functions/messages/logic/providers/ats.py puts them in the event's tags). Every field is bounded: lengths,
counts, id alphabets; unknown fields are refused.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, field_validator, model_validator

from functions.messages.models.message import Channel, Direction, Provider, Status
from shared.models import Model

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$"
MAX_SUBJECT = 998  # RFC 5322's line limit: longer is no subject anyone typed
MAX_BODY = 50_000  # characters; sealed and stored with the message (a DynamoDB item stays under 400 KB)
MAX_RECIPIENTS = 100
MAX_REFERENCES = 100
MAX_BATCH = 100

Id = Annotated[str, Field(pattern=ID_PATTERN, description="An id: letters, digits and `_.:@+-`, at most 200")]
RfcMessageId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=997,
        pattern=r"^<?[^<>\s]+>?$",
        description="An RFC 5322 message id, with or without its angle brackets",
    ),
]

# What a party's address looks like on each channel. SMS: E.164 (WhatsApp numbers as Twilio writes them), a short
# code, or an alphanumeric sender id; email: local@domain; the others: the ATS's or Teams' user ids.
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_SMS = re.compile(r"^(?:(?:whatsapp:)?\+[1-9][0-9]{6,14}|[0-9]{3,8}|[A-Za-z0-9][A-Za-z0-9 ]{0,10})$")
_USER = re.compile(ID_PATTERN)
_ADDRESS = {
    Channel.EMAIL: _EMAIL,
    Channel.SMS: _SMS,
    Channel.IN_APP: _USER,
    Channel.PORTAL: _USER,
    Channel.TEAMS: _USER,
}
# The channel each provider carries: a provider's id names a message of that channel only.
PROVIDER_CHANNELS = {
    Provider.SES: Channel.EMAIL,
    Provider.SENDGRID: Channel.EMAIL,
    Provider.SMTP: Channel.EMAIL,
    Provider.TWILIO: Channel.SMS,
    Provider.GRAPH: Channel.TEAMS,
}


class PartyInput(Model):
    """A sender or recipient as the ATS knows it."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(
        min_length=1,
        max_length=320,
        description="Email address, E.164 phone number (SMS), or user id (in-app, portal, Teams)",
    )
    name: str | None = Field(default=None, min_length=1, max_length=200, description="Display name")


class RecordedMessage(Model):
    """One message the ATS sent or received, as it records it."""

    model_config = ConfigDict(extra="forbid")

    message_id: Id = Field(description="The ATS's id of the message; recording it again is idempotent")
    channel: Channel
    direction: Direction
    status: Status = Field(description="The status the ATS knows: `sent` for what it just sent, `delivered` ...")
    occurred_at: AwareDatetime = Field(description="When the message reached that status")
    provider: Provider | None = Field(
        default=None,
        description="The provider the ATS sent it through (not `ats`); with `provider_message_id`",
    )
    provider_message_id: Id | None = Field(
        default=None,
        description=(
            "The provider's id of the message: SES MessageId, SendGrid X-Message-Id, Twilio MessageSid, Graph "
            "chatMessage id; for `smtp` it may be left out when `rfc_message_id` is given"
        ),
    )
    candidate_id: Id | None = None
    requisition_id: Id | None = None
    conversation_id: Id | None = Field(default=None, description="Teams chat or channel id, SMS conversation id")
    sender: PartyInput | None = None
    recipients: list[PartyInput] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    subject: str | None = Field(default=None, max_length=MAX_SUBJECT)
    body: str | None = Field(default=None, max_length=MAX_BODY, description="Plain text")
    rfc_message_id: RfcMessageId | None = None
    in_reply_to: RfcMessageId | None = None
    references: list[RfcMessageId] = Field(default_factory=list, max_length=MAX_REFERENCES)

    @field_validator("rfc_message_id", "in_reply_to")
    @classmethod
    def _without_brackets(cls, value: str | None) -> str | None:
        return value.strip("<>") if value is not None else None

    @field_validator("references")
    @classmethod
    def _references_without_brackets(cls, value: list[str]) -> list[str]:
        return [item.strip("<>") for item in value]

    @model_validator(mode="after")
    def _consistent(self) -> RecordedMessage:
        if self.provider is Provider.ATS:
            raise ValueError("provider names the service the message went through; `ats` is not one")
        if self.provider is not None:
            if self.provider_message_id is None and not (self.provider is Provider.SMTP and self.rfc_message_id):
                raise ValueError("provider needs provider_message_id (for smtp: or rfc_message_id)")
            if PROVIDER_CHANNELS[self.provider] is not self.channel:
                raise ValueError(f"provider {self.provider.value} does not carry {self.channel.value} messages")
        elif self.provider_message_id is not None:
            raise ValueError("provider_message_id needs provider")
        if self.channel is not Channel.EMAIL and (self.rfc_message_id or self.in_reply_to or self.references):
            raise ValueError("rfc_message_id, in_reply_to and references belong to email")
        pattern = _ADDRESS[self.channel]
        for party in [*([self.sender] if self.sender else []), *self.recipients]:
            if not pattern.match(party.address):
                raise ValueError(f"an address is not a {self.channel.value} address")
        return self


class RecordBatch(Model):
    """Up to 100 messages recorded in one request, validated as a whole: one invalid message refuses the batch."""

    model_config = ConfigDict(extra="forbid")

    messages: list[RecordedMessage] = Field(min_length=1, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _unique(self) -> RecordBatch:
        ids = [message.message_id for message in self.messages]
        if len(set(ids)) != len(ids):
            raise ValueError("a message_id appears twice in the batch")
        return self
