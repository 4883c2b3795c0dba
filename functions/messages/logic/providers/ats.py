"""A message the ATS records through the API (`RecordedMessage`, functions/messages/models/record_io.py) as a
`ProviderEvent` of provider `ats`.

- The message key is the ATS's `message_id`. When the ATS sent the message through a provider, the tags carry
  `provider` and `provider_message_id` in the form that provider's own events use as their message key
  (`lifecycle.message_id_of` reads them), so the ATS's record and the delivery events meet on one message:
  SendGrid's `X-Message-Id` as given (its events' `sg_message_id` up to the first '.'; a full `sg_message_id` is
  cut there too), an SMTP message by its Message-ID as `mime.message_key_for` makes it a key.
- The event id is the message id, the status and the time (`<message_id>:<status>:<epoch ms>`): the same request
  sent twice is one event; the ATS reporting a later status of the same message is another.
- `occurred_at` may not lie more than five minutes after `received_at` (clock skew): a record from the future
  would outrank every real event of the message in time order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from functions.messages.logic.providers.mime import ATS_ID, message_key_for
from functions.messages.models.message import MalformedPayload, Party, Provider, ProviderEvent
from functions.messages.models.record_io import PartyInput, RecordedMessage

CLOCK_SKEW = timedelta(minutes=5)


def parse_recorded(tenant: str, body: RecordedMessage, *, received_at: datetime) -> ProviderEvent:
    """The event for one message the ATS recorded for `tenant` (the tenant comes from the caller's verified
    token and is checked here only for shape: the event itself carries none, the consumer scopes by tenant).

    MalformedPayload when `occurred_at` is in the future beyond the allowed clock skew; ValueError when `tenant`
    is not an id or `received_at` is naive (caller bugs)."""
    if not ATS_ID.match(tenant):
        raise ValueError("tenant is not an id")
    if received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    occurred_at = body.occurred_at.astimezone(UTC)
    if occurred_at > received_at + CLOCK_SKEW:
        raise MalformedPayload("occurred_at is in the future")

    tags: dict[str, str] = {}
    join = _provider_key(body)
    if body.provider is not None and join is not None:
        tags = {"provider": body.provider.value, "provider_message_id": join}
    epoch_ms = int(occurred_at.timestamp() * 1000)
    return ProviderEvent(
        provider=Provider.ATS,
        event_id=f"{body.message_id}:{body.status.value}:{epoch_ms}",
        message_key=body.message_id,
        channel=body.channel,
        direction=body.direction,
        status=body.status,
        occurred_at=occurred_at,
        provider_event="recorded",
        rfc_message_id=body.rfc_message_id,
        in_reply_to=body.in_reply_to,
        references=tuple(body.references),
        conversation_id=body.conversation_id,
        sender=_party(body.sender) if body.sender is not None else None,
        recipients=tuple(_party(party) for party in body.recipients),
        subject=body.subject,
        body=body.body,
        candidate_id=body.candidate_id,
        requisition_id=body.requisition_id,
        tags=tags,
    )


def _provider_key(body: RecordedMessage) -> str | None:
    """The provider's message key for the message, as that provider's parser writes it."""
    if body.provider is Provider.SMTP:
        rfc_id = body.provider_message_id or body.rfc_message_id
        return message_key_for(rfc_id) if rfc_id else None
    if body.provider is Provider.SENDGRID and body.provider_message_id:
        return body.provider_message_id.split(".", 1)[0]
    return body.provider_message_id


def _party(party: PartyInput) -> Party:
    return Party(address=party.address, name=party.name)
