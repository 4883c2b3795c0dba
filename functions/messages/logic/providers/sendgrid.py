"""Twilio SendGrid as `ProviderEvent`s: the Event Webhook's JSON batches for the mail the ATS sent, and the Inbound
Parse Webhook's multipart posts for the mail candidates send back.

Event Webhook (`parse_sendgrid`): one event per array element, deduplicated downstream on `sg_event_id`. The
message is `sg_message_id` up to its first `.` (the `X-Message-Id` the Mail Send API returned, so an ATS record of
the send joins its events), or the local part of `smtp-id` when SendGrid leaves `sg_message_id` out (delayed
bounces). Events that name no message (account status changes, legacy Marketing unsubscribes) and event names this
module does not know give nothing, so one unknown event never fails a batch that SendGrid would then redeliver.

Inbound Parse (`parse_inbound`): with "POST the raw, full MIME message" on, the `email` field is the message and
`functions.messages.logic.providers.mime.parse_mime` reads it, like every other captured message. Without it,
SendGrid posts the raw headers and the decoded bodies as separate fields: they are put back together as a one-part
message (the original headers, the text body or else the HTML one, in UTF-8) and read by the same `parse_mime`.
So both settings of the checkbox give the same event for the same mail (its Message-ID as event id, `replied` for
an answer, the ATS's `X-ATS-*` headers not trusted on inbound mail), and there is one email reader to maintain.

`permanent` means SendGrid will not deliver the message: a bounce (`type` bounce or blocked: SendGrid retries
deferrals, not blocks) or a drop. `detail` holds codes only: the SMTP reply code, never the reply text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
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
from shared import clock

# Event Webhook `event` -> our status. A group resubscribe is a preference change; it proves the message arrived
# and is kept on the message's history under its own name, and it cannot undo an unsubscribe (status ranks).
_STATUSES: dict[str, Status] = {
    "processed": Status.SENT,
    "deferred": Status.DELAYED,
    "delivered": Status.DELIVERED,
    "open": Status.OPENED,
    "click": Status.CLICKED,
    "bounce": Status.BOUNCED,
    "dropped": Status.FAILED,
    "spamreport": Status.COMPLAINED,
    "unsubscribe": Status.UNSUBSCRIBED,
    "group_unsubscribe": Status.UNSUBSCRIBED,
    "group_resubscribe": Status.DELIVERED,
}
_PERMANENT = frozenset({"bounce", "dropped"})
# The Event Webhook's own fields; any other top-level key is a custom argument of the sender.
# fmt: off
_KNOWN_FIELDS = frozenset(
    {
        "email", "timestamp", "smtp-id", "event", "category", "sg_event_id", "sg_message_id", "response", "attempt",
        "reason", "status", "type", "bounce_classification", "useragent", "ip", "url", "url_offset", "asm_group_id",
        "sg_machine_open", "tls", "pool", "domain", "from", "cert_err", "newsletter", "unique_args", "custom_args",
        "marketing_campaign_id", "marketing_campaign_name", "marketing_campaign_version", "marketing_campaign_split_id",
        "post_type", "sg_user_id", "sg_content_type", "sg_template_id", "sg_template_name", "singlesend_id",
        "singlesend_name", "template_hash", "template_id", "template_version_id", "mc_stats", "phase_id", "send_at",
    }
)
# fmt: on
# Tags that steer which stored message an event joins (functions/messages/logic/lifecycle.py): never copied
# from a provider payload.
_RESERVED_TAGS = frozenset({"provider", "provider_message_id"})
_MAX_TAGS = 20

_EVENT_ID = re.compile(r"^[A-Za-z0-9_:.@+=/-]{1,400}$")
_MESSAGE_KEY = re.compile(r"^[A-Za-z0-9_+=-]{1,200}$")
_ATS_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_TOKEN = re.compile(r"[^A-Za-z0-9_.:/-]+")
_SMTP_CODE = re.compile(r"^\s*(?:smtp;\s*)?([245]\d\d)(?![\d.])", re.IGNORECASE)
_ENHANCED_CODE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_DIGITS = re.compile(r"^\s*\d{1,13}\s*$")
_MILLISECONDS_FROM = 10**11  # a Unix time above this is in milliseconds (Marketing Campaigns sends those)
# The headers describing the original message's MIME structure, replaced when the parsed mode's fields are rebuilt.
_STRUCTURE_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # header lines end only so (str.splitlines splits on more)


def parse_sendgrid(body: bytes) -> list[ProviderEvent]:
    """The events of one Event Webhook post (a JSON array). MalformedPayload when it is not one."""
    try:
        batch = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedPayload("the SendGrid body is not JSON") from None
    if not isinstance(batch, list):
        raise MalformedPayload("a SendGrid Event Webhook post is a JSON array")
    out = []
    for item in batch:
        if not isinstance(item, Mapping):
            raise MalformedPayload("a SendGrid event is a JSON object")
        event = _event(item)
        if event is not None:
            out.append(event)
    return out


def parse_inbound(body: bytes, content_type: str, *, received_at: datetime | None = None) -> list[ProviderEvent]:
    """The message of one Inbound Parse post (multipart/form-data): the raw MIME message SendGrid posts (`email`),
    else the message rebuilt from the parsed fields, read by `mime.parse_mime`. MalformedPayload when the post is
    neither."""
    from functions.messages.logic.providers.mime import parse_mime

    fields = _form_fields(body, content_type)
    raw = fields.get("email")
    if raw is None:
        raw = _rebuilt_message(fields)
    at = (received_at or clock.now()).astimezone(UTC)
    return [parse_mime(raw, provider=Provider.SENDGRID, direction=Direction.INBOUND, received_at=at)]


# --- Event Webhook ---------------------------------------------------------------------------------------------


def _event(item: Mapping[str, Any]) -> ProviderEvent | None:
    raw_name = item.get("event")
    if not isinstance(raw_name, str):
        raise MalformedPayload("a SendGrid event names its event")
    name = raw_name.strip().lower().replace(" ", "")
    status = _STATUSES.get(name)
    if status is None:
        return None
    key = _message_key(item)
    if key is None:
        return None
    smtp_id = _bare_id(item.get("smtp-id"))
    email = item.get("email")
    sender = item.get("from")
    tags = _custom_args(item)
    return ProviderEvent(
        provider=Provider.SENDGRID,
        event_id=_event_id(item),
        message_key=key,
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        status=status,
        occurred_at=_unix_time(item.get("timestamp")),
        provider_event=name,
        rfc_message_id=smtp_id,
        sender=Party(sender) if isinstance(sender, str) and "@" in sender else None,
        recipients=(Party(email),) if isinstance(email, str) and email else (),
        candidate_id=tags.pop("candidate_id", None),
        requisition_id=tags.pop("requisition_id", None),
        permanent=name in _PERMANENT,
        detail=_detail(name, item),
        attempt=_attempt(item.get("attempt")) if name == "deferred" else None,
        tags=tags,
    )


def _message_key(item: Mapping[str, Any]) -> str | None:
    """`sg_message_id` up to its first `.`; else the local part of `smtp-id` (its first half is the same id)."""
    raw = item.get("sg_message_id")
    if isinstance(raw, str) and raw.strip():
        key = raw.strip().split(".", 1)[0]
    else:
        smtp_id = _bare_id(item.get("smtp-id"))
        if smtp_id is None or "@" not in smtp_id:
            return None
        key = smtp_id.split("@", 1)[0].split(".", 1)[0]
    if not _MESSAGE_KEY.match(key):
        raise MalformedPayload("a SendGrid message id is not an id")
    return key


def _event_id(item: Mapping[str, Any]) -> str:
    """`sg_event_id`, SendGrid's deduplication id; a digest of the whole event when it has none."""
    raw = item.get("sg_event_id")
    if isinstance(raw, str) and _EVENT_ID.match(raw.strip()):
        return raw.strip()
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _detail(name: str, item: Mapping[str, Any]) -> str | None:
    parts: list[str] = []
    if name == "bounce" and _token(item.get("type")):
        parts.append(f"type={_token(item.get('type'))}")
    if name == "dropped" and _token(item.get("reason")):
        parts.append(f"reason={_token(item.get('reason'))}")  # an enumerated reason, e.g. Bounced Address
    status = item.get("status")
    if isinstance(status, str) and _ENHANCED_CODE.match(status):
        parts.append(f"status={status}")
    smtp = _smtp_code(item.get("response")) or (_smtp_code(item.get("reason")) if name == "bounce" else None)
    if smtp:
        parts.append(f"smtp={smtp}")
    if name == "bounce" and _token(item.get("bounce_classification")):
        parts.append(f"classification={_token(item.get('bounce_classification'))}")
    if name == "open" and item.get("sg_machine_open") is True:
        parts.append("machine_open=true")  # Apple Mail Privacy Protection: no proof a person read it
    group = item.get("asm_group_id")
    if name.startswith("group_") and isinstance(group, int) and not isinstance(group, bool):
        parts.append(f"asm_group_id={group}")
    return ";".join(parts) or None


def _custom_args(item: Mapping[str, Any]) -> dict[str, str]:
    """The sender's custom arguments that are ids: top-level keys SendGrid does not define, and the
    `unique_args` / `custom_args` objects where a sender's integration nests them."""
    pairs: list[tuple[Any, Any]] = [(k, v) for k, v in item.items() if k not in _KNOWN_FIELDS]
    for nested in ("unique_args", "custom_args"):
        if isinstance(item.get(nested), Mapping):
            pairs.extend(item[nested].items())
    out: dict[str, str] = {}
    for key, value in pairs:
        if len(out) >= _MAX_TAGS:
            break
        if (
            isinstance(key, str)
            and key not in _RESERVED_TAGS
            and _TAG_KEY.match(key)
            and isinstance(value, str)
            and _ATS_ID.match(value)
        ):
            out.setdefault(key, value)
    return out


def _unix_time(raw: Any) -> datetime:
    if isinstance(raw, str) and _DIGITS.match(raw):
        raw = int(raw)
    if not isinstance(raw, int | float) or isinstance(raw, bool) or raw < 0:
        raise MalformedPayload("a SendGrid event carries a Unix timestamp")
    seconds = raw / 1000 if raw > _MILLISECONDS_FROM else raw
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedPayload("a SendGrid timestamp is out of range") from None


def _attempt(raw: Any) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    return None


# --- Inbound Parse ---------------------------------------------------------------------------------------------


def _form_fields(body: bytes, content_type: str) -> dict[str, bytes]:
    """The form fields of a multipart/form-data body by name (first one wins); file uploads (attachments in the
    parsed mode) are skipped unread. The standard `email` parser reads multipart bodies; imported here because only
    Inbound Parse needs it."""
    from email import policy
    from email.message import Message
    from email.parser import BytesParser

    if not content_type or "\r" in content_type or "\n" in content_type:
        raise MalformedPayload("an Inbound Parse post needs a single-line multipart content type")
    try:
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("ascii")
    except UnicodeEncodeError:
        raise MalformedPayload("the content type is not ASCII") from None
    form = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if form.get_content_type() != "multipart/form-data" or not form.get_boundary() or not form.is_multipart():
        raise MalformedPayload("an Inbound Parse post is multipart/form-data with a boundary")
    fields: dict[str, bytes] = {}
    for part in form.get_payload():
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None or name in fields:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            fields[name] = payload
    if not fields:
        raise MalformedPayload("the Inbound Parse post has no fields")
    return fields


def _rebuilt_message(fields: Mapping[str, bytes]) -> bytes:
    """A one-part message from the parsed mode's fields: the raw `headers` minus the ones describing the original
    MIME structure, then the `text` body, or the `html` one when there is no text, decoded with the charset
    SendGrid reports for it (`charsets`) and written as UTF-8."""
    charsets = _charsets(fields.get("charsets"))

    def text(name: str) -> str | None:
        raw = fields.get(name)
        if raw is None:
            return None
        try:
            return raw.decode(charsets.get(name, "utf-8"), errors="replace")
        except LookupError:
            return raw.decode("utf-8", errors="replace")

    headers = text("headers")
    if headers is None:
        raise MalformedPayload("an Inbound Parse post carries the raw message or its headers")
    body, subtype = text("text"), "plain"
    if body is None and (html := text("html")) is not None:
        body, subtype = html, "html"
    kept = _without_headers(headers, _STRUCTURE_HEADERS)
    head = "".join(f"{line}\r\n" for line in kept)
    structure = (
        f"MIME-Version: 1.0\r\nContent-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    )
    return f"{head}{structure}\r\n{body or ''}".encode()


def _without_headers(headers: str, names: frozenset[str]) -> list[str]:
    """The header lines of `headers` without the fields named `names` (with their folded continuation lines)."""
    kept: list[str] = []
    dropping = False
    for line in _LINE_BREAK.split(headers):
        if not line.strip():
            break  # the end of the header section
        if line[0] in " \t":
            if not dropping and kept:
                kept.append(line)
            continue
        dropping = line.split(":", 1)[0].strip().lower() in names
        if not dropping:
            kept.append(line)
    return kept


def _charsets(raw: bytes | None) -> dict[str, str]:
    try:
        value = json.loads(raw) if raw else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


# --- shared ----------------------------------------------------------------------------------------------------


def _bare_id(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    value = raw.strip().strip("<>").strip()
    return value or None


def _token(raw: Any) -> str | None:
    """A provider's code word for `detail`; None for anything that could hold an address."""
    if not isinstance(raw, str) or "@" in raw:
        return None
    cleaned = _TOKEN.sub("_", raw.strip()).strip("_")[:64]
    return cleaned or None


def _smtp_code(raw: Any) -> str | None:
    match = _SMTP_CODE.match(raw) if isinstance(raw, str) else None
    return match.group(1) if match else None
