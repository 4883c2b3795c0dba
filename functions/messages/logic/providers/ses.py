"""Amazon SES sending events as `ProviderEvent`s, in each of the three ways SES hands them over.

- `parse_ses(record)`: one SES record, either event publishing through a configuration set (`eventType`: Send,
  Delivery, Bounce, Complaint, Reject, DeliveryDelay, Rendering Failure, Open, Click, Subscription) or the older
  identity notifications (`notificationType`: Bounce, Complaint, Delivery). The two formats share the `mail`
  object and the per-type objects, so one reader serves both.
- `parse_sns_body(body)`: the HTTPS body SNS posts (a Notification whose `Message` is the record as a JSON string;
  the subscription handshake messages carry no event).
- `parse_eventbridge(event)`: an EventBridge event from SES (`source` `aws.ses`, `detail` the record).

Where SES lists several recipients in one record (Bounce, Complaint, Delivery, DeliveryDelay) each recipient gets
its own event, because each has its own outcome and SES may as well send one record per recipient: the event ids
come out the same either way (message id, type, time and a digest of the recipient), so a replay through another
route (SNS and EventBridge both configured) is a no-op downstream.

`permanent` means SES has given up on the message: every Bounce (SES reports a soft bounce only after its own
retries ran out), a Reject and a Rendering Failure. Whether the address itself is bad stays readable in `detail`
(`bounce=Permanent/General` against `bounce=Transient/MailboxFull`). `detail` carries codes only: SMTP replies
are cut to their three-digit code because SES's diagnostic text often quotes the recipient's address.

Records of a type this module does not know (a future SES event type, an inbound `Received` notification, which
`mime.parse_ses_receipt` reads) give no event rather than an error, so SNS does not retry them for days.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from functions.messages.models.message import (
    Channel,
    Direction,
    MalformedPayload,
    Party,
    Provider,
    ProviderEvent,
    Status,
)

# eventType / notificationType -> (status, the key of the type's own object in the record)
_TYPES: dict[str, tuple[Status, str | None]] = {
    "Send": (Status.SENT, "send"),
    "Delivery": (Status.DELIVERED, "delivery"),
    "Bounce": (Status.BOUNCED, "bounce"),
    "Complaint": (Status.COMPLAINED, "complaint"),
    "Reject": (Status.FAILED, "reject"),
    "DeliveryDelay": (Status.DELAYED, "deliveryDelay"),
    "Rendering Failure": (Status.FAILED, "failure"),
    "Open": (Status.OPENED, "open"),
    "Click": (Status.CLICKED, "click"),
    "Subscription": (Status.UNSUBSCRIBED, "subscription"),
}
_PERMANENT = frozenset({"Bounce", "Reject", "Rendering Failure"})

_EVENT_ID = re.compile(r"^[A-Za-z0-9_:.@+=/-]{1,400}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+=-]{0,199}$")
_ATS_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_TOKEN = re.compile(r"[^A-Za-z0-9_.:/-]+")
_SMTP_CODE = re.compile(r"^\s*(?:smtp;\s*)?([245]\d\d)(?![\d.])", re.IGNORECASE)
_ENHANCED_CODE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_SKIPPED_TAG_PREFIXES = ("ses:", "aws:")
# Tags that steer which stored message an event joins (functions/messages/logic/lifecycle.py): never copied
# from a provider payload.
_RESERVED_TAGS = frozenset({"provider", "provider_message_id"})
_MAX_TAGS = 20


def parse_ses(record: Mapping[str, Any]) -> list[ProviderEvent]:
    """The events of one SES record (event publishing or identity notification). MalformedPayload when the
    record is not SES's format; an empty list for a well-formed record of a type that carries no message event."""
    if not isinstance(record, Mapping):
        raise MalformedPayload("an SES record is a JSON object")
    kind = record.get("eventType", record.get("notificationType"))
    if not isinstance(kind, str):
        raise MalformedPayload("an SES record names its eventType or notificationType")
    if kind not in _TYPES:
        return []
    status, key = _TYPES[kind]
    mail = record.get("mail")
    if not isinstance(mail, Mapping):
        raise MalformedPayload("an SES record carries its mail object")
    own = record.get(key, {}) if key else {}
    if not isinstance(own, Mapping):
        raise MalformedPayload(f"the {key} object of an SES {kind} record is not an object")

    message_id = mail.get("messageId")
    if not isinstance(message_id, str) or not _MESSAGE_ID.match(message_id):
        raise MalformedPayload("an SES record's mail.messageId is missing or not an SES id")
    occurred_at = _timestamp(own.get("timestamp") or mail.get("timestamp"))
    names = _display_names(mail)
    headers = _headers(mail)
    tags = _tags(mail.get("tags"))
    raw_common = mail.get("commonHeaders")
    common: Mapping[str, Any] = raw_common if isinstance(raw_common, Mapping) else {}
    subject = common.get("subject") if isinstance(common.get("subject"), str) else None
    stem = f"{message_id}:{kind.replace(' ', '')}:{_iso(occurred_at)}"
    if kind == "Subscription":
        status = Status.UNSUBSCRIBED if _opted_out(own) else Status.DELIVERED
    template = ProviderEvent(
        provider=Provider.SES,
        event_id=_checked(stem),
        message_key=message_id,
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        status=status,
        occurred_at=occurred_at,
        provider_event=kind,
        rfc_message_id=_bare_id(common.get("messageId")) or _bare_id(headers.get("message-id")),
        in_reply_to=_bare_id(headers.get("in-reply-to")),
        references=_id_list(headers.get("references")),
        sender=_sender(mail),
        recipients=tuple(Party(a, names.get(a.lower())) for a in _strings(mail.get("destination"))),
        subject=subject,
        candidate_id=_ats_id(tags.pop("candidate_id", None)),
        requisition_id=_ats_id(tags.pop("requisition_id", None)),
        permanent=kind in _PERMANENT,
        detail=_detail(kind, own, {}),
        tags=tags,
    )
    per_recipient = _per_recipient(kind, own)
    if per_recipient is None:
        return [template]
    return [
        replace(
            template,
            event_id=_checked(f"{stem}:{_digest(address)}"),
            recipients=(Party(address, names.get(address.lower())),),
            detail=_detail(kind, own, entry),
            tags=dict(tags),
        )
        for address, entry in per_recipient
    ]


def parse_sns_body(body: bytes) -> list[ProviderEvent]:
    """The events in the body SNS posted to our HTTPS subscription. The subscription handshake
    (SubscriptionConfirmation, UnsubscribeConfirmation) carries none: the verifier and the receiver deal with it.
    A topic with raw message delivery turned on posts the SES record itself, which is read as such."""
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedPayload("the SNS body is not JSON") from None
    if not isinstance(message, Mapping):
        raise MalformedPayload("an SNS message is a JSON object")
    kind = message.get("Type")
    if kind is None and ("eventType" in message or "notificationType" in message):
        return parse_ses(message)
    if kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        return []
    if kind != "Notification":
        raise MalformedPayload("the SNS message is not a Notification")
    inner = message.get("Message")
    if not isinstance(inner, str):
        raise MalformedPayload("the SNS Notification carries no Message")
    try:
        record = json.loads(inner)
    except ValueError:
        raise MalformedPayload("the SNS Message is not an SES record") from None
    return parse_ses(record)


def parse_eventbridge(event: Mapping[str, Any]) -> list[ProviderEvent]:
    """The events of one EventBridge event from SES (`Email Sent`, `Email Bounced`, ...: `detail` is the SES
    record). SES's other events on the bus (Virtual Deliverability Manager advice, sending status) carry no
    message and give none."""
    if not isinstance(event, Mapping) or event.get("source") != "aws.ses":
        raise MalformedPayload("not an EventBridge event from aws.ses")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedPayload("the EventBridge event carries no detail object")
    if "eventType" not in detail and "notificationType" not in detail:
        return []
    return parse_ses(detail)


def _per_recipient(kind: str, own: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]] | None:
    """(address, that recipient's entry) for the types where SES reports each recipient's own outcome."""
    if kind == "Delivery":
        entries: Any = [{"emailAddress": a} for a in _strings(own.get("recipients"))]
    elif kind == "Bounce":
        entries = own.get("bouncedRecipients")
    elif kind == "Complaint":
        entries = own.get("complainedRecipients")
    elif kind == "DeliveryDelay":
        entries = own.get("delayedRecipients")
    else:
        return None
    out = [
        (entry["emailAddress"], entry)
        for entry in entries or ()
        if isinstance(entry, Mapping) and isinstance(entry.get("emailAddress"), str) and entry["emailAddress"]
    ]
    if not out:
        raise MalformedPayload(f"an SES {kind} record names no recipient")
    return out


def _detail(kind: str, own: Mapping[str, Any], entry: Mapping[str, Any]) -> str | None:
    """Codes only, `key=value;...`: bounce type and subtype, enhanced status, the SMTP reply code."""
    parts: list[str] = []
    if kind == "Bounce":
        parts.append(f"bounce={_token(own.get('bounceType'))}/{_token(own.get('bounceSubType'))}")
    elif kind == "Complaint":
        for name, value in (("complaint", own.get("complaintFeedbackType")), ("subtype", own.get("complaintSubType"))):
            if _token(value):
                parts.append(f"{name}={_token(value)}")
    elif kind == "DeliveryDelay" and _token(own.get("delayType")):
        parts.append(f"delay={_token(own.get('delayType'))}")
    elif kind == "Reject":
        parts.append(f"reject={_token(own.get('reason')) or 'unknown'}")
    elif kind == "Rendering Failure":
        parts.append("rendering_failure")
        if _token(own.get("templateName")):
            parts.append(f"template={_token(own.get('templateName'))}")
    elif kind == "Subscription":
        if _token(own.get("source")):
            parts.append(f"source={_token(own.get('source'))}")
        new = own.get("newTopicPreferences")
        if isinstance(new, Mapping) and isinstance(new.get("unsubscribeAll"), bool):
            parts.append(f"unsubscribe_all={str(new['unsubscribeAll']).lower()}")
    status = entry.get("status")
    if isinstance(status, str) and _ENHANCED_CODE.match(status):
        parts.append(f"status={status}")
    smtp = _smtp_code(entry.get("diagnosticCode"))
    if smtp is None and kind == "Delivery":
        smtp = _smtp_code(own.get("smtpResponse"))
    if smtp:
        parts.append(f"smtp={smtp}")
    return ";".join(parts) or None


def _opted_out(subscription: Mapping[str, Any]) -> bool:
    """A Subscription event that unsubscribes: from everything, or from a topic that was not opted out before.
    Anything else (an opt-in, a topic re-subscribed) is a preference change that proves delivery, no more."""
    new = subscription.get("newTopicPreferences")
    if not isinstance(new, Mapping):
        return False
    if new.get("unsubscribeAll") is True:
        return True
    old = subscription.get("oldTopicPreferences")
    before = _topic_statuses(old if isinstance(old, Mapping) else {})
    return any(status == "OptOut" and before.get(topic) != "OptOut" for topic, status in _topic_statuses(new).items())


def _topic_statuses(preferences: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in preferences.get("topicSubscriptionStatus") or ():
        if isinstance(item, Mapping) and isinstance(item.get("topicName"), str):
            out[item["topicName"]] = str(item.get("subscriptionStatus"))
    return out


def _sender(mail: Mapping[str, Any]) -> Party | None:
    common = mail.get("commonHeaders")
    candidates = _strings(common.get("from")) if isinstance(common, Mapping) else []
    source = mail.get("source")
    for raw in [*candidates, *([source] if isinstance(source, str) else [])]:
        parsed = _addresses([raw])
        if parsed:
            return parsed[0]
    return None


def _display_names(mail: Mapping[str, Any]) -> dict[str, str | None]:
    """Display names of the To/Cc headers by lower-cased address, to name the envelope recipients."""
    common = mail.get("commonHeaders")
    if not isinstance(common, Mapping):
        return {}
    raws = [*_strings(common.get("to")), *_strings(common.get("cc"))]
    return {party.address.lower(): party.name for party in _addresses(raws)}


def _addresses(raw: Sequence[str]) -> list[Party]:
    from email.utils import getaddresses  # only records with headers need it

    return [Party(address, name or None) for name, address in getaddresses(list(raw)) if "@" in address]


def _headers(mail: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in mail.get("headers") or ():
        if isinstance(item, Mapping) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str):
            out.setdefault(item["name"].lower(), item["value"])
    return out


def _tags(raw: Any) -> dict[str, str]:
    """The sender's own message tags (first value of each), ids only: SES's `ses:` tags and anything that is
    not a well-formed id are left out."""
    out: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        return out
    for key, values in raw.items():
        if len(out) >= _MAX_TAGS:
            break
        if not isinstance(key, str) or key.startswith(_SKIPPED_TAG_PREFIXES) or key in _RESERVED_TAGS:
            continue
        value = values[0] if isinstance(values, list) and values else values
        if _TAG_KEY.match(key) and isinstance(value, str) and _ATS_ID.match(value):
            out[key] = value
    return out


def _timestamp(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise MalformedPayload("an SES record carries no timestamp")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise MalformedPayload("an SES timestamp is not ISO 8601") from None
    if moment.tzinfo is None:
        raise MalformedPayload("an SES timestamp has no time zone")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _checked(event_id: str) -> str:
    if not _EVENT_ID.match(event_id):
        raise MalformedPayload("an SES record gives no usable event id")
    return event_id


def _digest(address: str) -> str:
    """A recipient in an event id without the address: ids outlive erasure, addresses must not."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:16]


def _strings(raw: Any) -> list[str]:
    return [item for item in raw if isinstance(item, str)] if isinstance(raw, list) else []


def _bare_id(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    value = raw.strip().strip("<>").strip()
    return value or None


def _id_list(raw: str | None) -> tuple[str, ...]:
    return tuple(v for v in (_bare_id(part) for part in (raw or "").split()) if v)


def _ats_id(raw: str | None) -> str | None:
    return raw if raw is not None and _ATS_ID.match(raw) else None


def _token(raw: Any) -> str | None:
    """A provider's code word for `detail`; None for anything that could hold an address."""
    if not isinstance(raw, str) or "@" in raw:
        return None
    cleaned = _TOKEN.sub("_", raw.strip()).strip("_")[:64]
    return cleaned or None


def _smtp_code(raw: Any) -> str | None:
    match = _SMTP_CODE.match(raw) if isinstance(raw, str) else None
    return match.group(1) if match else None
