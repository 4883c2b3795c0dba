"""Twilio Programmable Messaging webhooks as `ProviderEvent`s: status callbacks of the SMS (and WhatsApp, RCS...)
messages the ATS sent, and the incoming-message webhook of a candidate's reply.

Both arrive form-encoded and are told apart by their status: a status callback carries `MessageStatus`
(queued, sending, sent, delivered, undelivered, failed, read, accepted, scheduled, canceled); an incoming message
carries `SmsStatus=received` (or no status at all, only `Body`, `From`, `To`, as Twilio's parameter table lists
them). Every channel is `Channel.SMS`: a WhatsApp or RCS address (`whatsapp:+1...`) loses its prefix, so the
number matches the candidate's phone, and the channel is kept in `detail` (`channel=whatsapp`).

Twilio sends no time with either request, so `occurred_at` is when the request reached us (`received_at`, else the
clock). `permanent` means Twilio will not deliver this message: Twilio never retries a failed or undelivered
message, and a canceled one is never sent; `ErrorCode` says why (`detail` `error=30003`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from functions.messages.models.message import (
    Channel,
    Direction,
    MalformedPayload,
    Party,
    Provider,
    ProviderEvent,
    Status,
)
from shared import clock

# MessageStatus / SmsStatus -> our status. The initial statuses (queued, accepted, scheduled) only reach a status
# callback in edge cases; mapping them keeps the table whole.
_STATUSES: dict[str, Status] = {
    "accepted": Status.QUEUED,
    "scheduled": Status.QUEUED,
    "queued": Status.QUEUED,
    "sending": Status.QUEUED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
    "read": Status.OPENED,
    "receiving": Status.QUEUED,
    "received": Status.DELIVERED,
}
_INBOUND = frozenset({"receiving", "received"})
_PERMANENT = frozenset({"undelivered", "failed", "canceled"})

_SID = re.compile(r"^[A-Z]{2}[0-9A-Za-z]{32}$")  # MessageSid, AccountSid, MessagingServiceSid: 34 characters
_ERROR_CODE = re.compile(r"^[0-9]{1,6}$")
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_CHANNEL = re.compile(r"^([a-z][a-z0-9-]{0,19}):(.+)$")  # whatsapp:+1..., rcs:..., messenger:...
_COUNT = re.compile(r"^[0-9]{1,3}$")
_MAX_ADDRESS = 200


def parse_twilio(form: Mapping[str, str], *, received_at: datetime | None = None) -> list[ProviderEvent]:
    """The event of one Twilio messaging webhook (status callback or incoming message). MalformedPayload when
    the form is not one; an empty list for a status this module does not know yet (Twilio adds statuses)."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    if not isinstance(sid, str) or not _SID.match(sid):
        raise MalformedPayload("a Twilio webhook names its MessageSid (34 characters)")
    raw_status = form.get("MessageStatus") or form.get("SmsStatus")
    if not raw_status:
        if "Body" not in form:
            raise MalformedPayload("a Twilio webhook carries a MessageStatus, or a Body for an incoming message")
        raw_status = "received"
    name = raw_status.strip().lower()
    status = _STATUSES.get(name)
    if status is None:
        return []
    inbound = name in _INBOUND
    error = form.get("ErrorCode") or None
    if error is not None and not _ERROR_CODE.match(error):
        raise MalformedPayload("a Twilio ErrorCode is a number")

    sender, sender_channel = _address(form.get("From"))
    recipient, recipient_channel = _address(form.get("To"))
    channel = _channel_name(form.get("ChannelPrefix")) or sender_channel or recipient_channel
    detail = [f"channel={channel}"] if channel else []
    if error:
        detail.append(f"error={error}")
    media = form.get("NumMedia")
    if inbound and media and _COUNT.match(media) and int(media) > 0:
        detail.append(f"media={int(media)}")

    at = (received_at or clock.now()).astimezone(UTC)
    event_id = sid if inbound else "-".join(part for part in (sid, name, error) if part)
    return [
        ProviderEvent(
            provider=Provider.TWILIO,
            event_id=event_id,
            message_key=sid,
            channel=Channel.SMS,
            direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
            status=status,
            occurred_at=at,
            provider_event=name,
            sender=Party(sender, _profile_name(form) if inbound else None) if sender else None,
            recipients=(Party(recipient),) if recipient else (),
            body=form.get("Body") if inbound else None,
            permanent=name in _PERMANENT,
            detail=";".join(detail) or None,
            tags=_tags(form),
        )
    ]


def _address(raw: str | None) -> tuple[str | None, str | None]:
    """(the address without its channel prefix, the channel): `whatsapp:+14155238886` -> (`+14155238886`,
    `whatsapp`); a plain number has no channel."""
    value = (raw or "").strip()
    if not value:
        return None, None
    if len(value) > _MAX_ADDRESS:
        raise MalformedPayload("a Twilio address is too long")
    match = _CHANNEL.match(value)
    if match and not value.startswith("+"):
        return match.group(2), match.group(1)
    return value, None


def _channel_name(raw: str | None) -> str | None:
    value = (raw or "").strip().lower()
    return value if _CHANNEL_NAME.match(value) else None


def _profile_name(form: Mapping[str, str]) -> str | None:
    """The sender's display name, which only WhatsApp sends (`ProfileName`)."""
    name = (form.get("ProfileName") or "").strip()
    return name[:200] or None


def _tags(form: Mapping[str, str]) -> dict[str, str]:
    """Twilio's ids of the account and the Messaging Service, for joining a sub-account's messages."""
    out = {}
    for key, tag in (("AccountSid", "account_sid"), ("MessagingServiceSid", "messaging_service_sid")):
        value = form.get(key)
        if value and _SID.match(value):
            out[tag] = value
    return out
