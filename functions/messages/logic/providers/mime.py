"""Raw MIME messages (RFC 5322, MIME with RFC 2047 encoded words) as one `ProviderEvent` each, and the two AWS
notifications that name a captured message in S3.

Where raw MIME comes from: SES receiving stores an inbound message in S3 (S3 action) and notifies (S3 event
notification, or the SES receipt notification through SNS); an SMTP relay journals what the ATS sends into the
same bucket; SendGrid Inbound Parse posts it (providers-a delegates here). The consumer fetches the object and
calls `parse_mime` with the direction it knows from the source.

- Parsing is the standard `email` package with `policy.default`: it decodes encoded words in display names and
  the subject, unfolds headers and decodes transfer encodings. It is imported inside `parse_mime`, so a handler
  that only verifies a webhook does not pay for it on a cold start.
- The body is the text/plain part, else the text/html part reduced to text (`html_to_text`), else None.
- The event id and message key are the Message-ID; one that does not fit the event-id alphabet is replaced by
  its SHA-256 hex, and a message without one by the SHA-256 hex of its raw bytes (a replay is the same bytes).
- `X-ATS-Candidate-Id` / `X-ATS-Requisition-Id` are trusted on outbound mail only: the ATS stamps them on what
  it sends; on inbound mail anyone can write them, and a forged one would file a stranger's message under another
  candidate. An inbound reply reaches its candidate through its thread (In-Reply-To / References) instead.
- `occurred_at` is when the platform got the message (`received_at`) when the caller knows it: the Date header
  is the sender's claim. Without `received_at` the Date header is used, then the platform clock.
- An automatic reply (RFC 3834 `Auto-Submitted` other than `no`) proves delivery but is no answer from the
  candidate: status DELIVERED, never REPLIED, detail `auto_submitted=<keyword>`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from email.message import EmailMessage, MIMEPart

EVENT_ID = re.compile(r"^[A-Za-z0-9_:.@+=/-]{1,400}$")
ATS_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$")
MAX_REFERENCES = 100  # a long thread's References keep the root and the newest ids
MAX_RECIPIENTS = 200

_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
_BARE_ID = re.compile(r"^[^<>\s()]+$")
_AUTO_KEYWORD = re.compile(r"^([a-z][a-z-]{0,39})")
_HEADER_ERRORS = (ValueError, IndexError, TypeError, AttributeError, LookupError)

# html_to_text: tags whose content is not text, tags that break a line.
_SKIP_TAGS = frozenset({"head", "script", "style", "template", "title", "noscript"})
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
        "section", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip


def message_key_for(rfc_message_id: str) -> str:
    """The message key (and event id) of a Message-ID: itself when it fits the event-id alphabet, else its
    SHA-256 hex. Shared with the ATS parser so that a message the ATS records by its Message-ID meets the copy
    captured from SMTP."""
    if EVENT_ID.match(rfc_message_id):
        return rfc_message_id
    return hashlib.sha256(rfc_message_id.encode()).hexdigest()


def parse_mime(
    raw: bytes,
    *,
    provider: Provider = Provider.SMTP,
    direction: Direction | None = None,
    received_at: datetime | None = None,
) -> ProviderEvent:
    """One raw RFC 5322 message as an event. `direction` None means inbound: a message the platform captured
    without the caller saying otherwise came from outside (the ATS's own outbound copies come with OUTBOUND).

    MalformedPayload when `raw` is empty or has no header at all (not a message)."""
    from email import policy
    from email.parser import BytesParser

    if received_at is not None and received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    if not raw or not raw.strip():
        raise MalformedPayload("the message is empty")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not msg.keys():
        raise MalformedPayload("the message has no RFC 5322 header")

    direction = direction or Direction.INBOUND
    message_ids = _ids(_text(msg, "Message-ID"))
    rfc_message_id = message_ids[0] if message_ids else None
    key = message_key_for(rfc_message_id) if rfc_message_id else hashlib.sha256(raw).hexdigest()
    reply_ids = _ids(_text(msg, "In-Reply-To"))
    in_reply_to = reply_ids[0] if reply_ids else None
    references = _ids(_text(msg, "References"))
    if len(references) > MAX_REFERENCES:
        references = [references[0], *references[-(MAX_REFERENCES - 1) :]]

    auto = _auto_submitted(_text(msg, "Auto-Submitted")) if direction is Direction.INBOUND else None
    if direction is Direction.OUTBOUND:
        status = Status.SENT
    elif in_reply_to and auto is None:
        status = Status.REPLIED
    else:
        status = Status.DELIVERED

    senders = _addresses(msg, "From")
    recipients = _unique([*_addresses(msg, "To"), *_addresses(msg, "Cc")])[:MAX_RECIPIENTS]
    trusted = direction is Direction.OUTBOUND
    return ProviderEvent(
        provider=provider,
        event_id=key,
        message_key=key,
        channel=Channel.EMAIL,
        direction=direction,
        status=status,
        occurred_at=_occurred_at(msg, received_at),
        provider_event="sent" if direction is Direction.OUTBOUND else "received",
        rfc_message_id=rfc_message_id,
        in_reply_to=in_reply_to,
        references=tuple(references),
        sender=senders[0] if senders else None,
        recipients=tuple(recipients),
        subject=_text(msg, "Subject"),
        body=_body(msg),
        candidate_id=_ats_id(msg, "X-ATS-Candidate-Id") if trusted else None,
        requisition_id=_ats_id(msg, "X-ATS-Requisition-Id") if trusted else None,
        detail=auto,
    )


def thread_root(event: ProviderEvent) -> str:
    """The id that names an email thread: the first id of References (the thread's first message), else the
    message this one answers, else the message itself."""
    if event.references:
        return event.references[0]
    return event.in_reply_to or event.rfc_message_id or event.message_key


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: tags dropped (script and style with their content), entities decoded, a
    line break for each block element, runs of blank lines and spaces collapsed. Teams `<emoji alt="…">` keeps
    its character. Not a renderer: enough for reading, search and the subject-access export."""
    from html.parser import HTMLParser

    class _Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self.skipping = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in _SKIP_TAGS:
                self.skipping += 1
            elif self.skipping:
                return
            elif tag in _BLOCK_TAGS or tag == "br":
                self.parts.append("\n")
            elif tag == "emoji":
                self.parts.append(dict(attrs).get("alt") or "")

        def handle_endtag(self, tag: str) -> None:
            if tag in _SKIP_TAGS:
                self.skipping = max(0, self.skipping - 1)
            elif tag in _BLOCK_TAGS and not self.skipping:
                self.parts.append("\n")

        def handle_data(self, data: str) -> None:
            if not self.skipping:
                self.parts.append(data)

    parser = _Text()
    parser.feed(html)
    parser.close()
    lines: list[str] = []
    for line in "".join(parser.parts).splitlines():
        cleaned = " ".join(line.split())
        if cleaned or (lines and lines[-1]):
            lines.append(cleaned)
    return "\n".join(lines).strip()


def parse_s3_notification(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) of every object an S3 event notification reports created (the captured-SMTP bucket). The
    key arrives URL-encoded (form encoding: "red flower.jpg" is "red+flower.jpg") and is returned decoded, as
    GetObject wants it. The `s3:TestEvent` S3 sends when the notification is configured gives []; records of
    other event types (removals, restores) are skipped.

    MalformedPayload when it is not an S3 event notification or a record lacks its bucket or key."""
    from urllib.parse import unquote_plus

    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise MalformedPayload("not an S3 event notification: no Records")
    found: list[tuple[str, str]] = []
    for record in records:
        if not isinstance(record, Mapping) or record.get("eventSource") != "aws:s3":
            raise MalformedPayload("an S3 event record has no eventSource aws:s3")
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = record.get("s3")
        bucket = _get(s3, "bucket", "name")
        key = _get(s3, "object", "key")
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
            raise MalformedPayload("an S3 event record lacks s3.bucket.name or s3.object.key")
        found.append((bucket, unquote_plus(key)))
    return found


def parse_s3_object_created(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) of the object an S3 `Object Created` event on EventBridge reports (the captured-SMTP bucket
    publishes to EventBridge: "EventBridge event message structure" of the S3 user guide). Its key is the object's
    own; the captured layout (`inbound/<tenant>/<SES message id>`) has no character that encoding would change.

    MalformedPayload when it is not an S3 `Object Created` event or lacks its bucket or key."""
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        raise MalformedPayload("not an S3 Object Created event")
    detail = event.get("detail")
    bucket, key = _get(detail, "bucket", "name"), _get(detail, "object", "key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise MalformedPayload("an S3 Object Created event lacks detail.bucket.name or detail.object.key")
    return [(bucket, key)]


def parse_ses_receipt(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) of the message an SES receiving notification (`notificationType` Received) says the S3 action
    stored. Accepts the notification itself, the SNS message carrying it (`Message` a JSON string) or Lambda's
    SNS event record (`Sns.Message`). Other actions give []: an SNS action's notification carries the message in
    `content` (pass it to `parse_mime` directly), the others store nothing. The key is not URL-encoded here.

    MalformedPayload when it is not an SES receiving notification or the S3 action lacks its bucket or key."""
    notification = _unwrap_sns(record)
    if notification.get("notificationType") != "Received":
        raise MalformedPayload("not an SES receiving notification: notificationType is not Received")
    action = _get(notification, "receipt", "action")
    if not isinstance(action, Mapping) or not isinstance(action.get("type"), str):
        raise MalformedPayload("the SES receiving notification has no receipt.action.type")
    if action["type"] != "S3":
        return []
    bucket, key = action.get("bucketName"), action.get("objectKey")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise MalformedPayload("the SES S3 action lacks bucketName or objectKey")
    return [(bucket, key)]


# ---- helpers ---------------------------------------------------------------------------------------------------


def _unwrap_sns(record: Mapping[str, Any]) -> Mapping[str, Any]:
    sns = record.get("Sns")
    envelope = sns if isinstance(sns, Mapping) else record
    message = envelope.get("Message")
    if "notificationType" in record or not isinstance(message, str):
        return record
    try:
        inner = json.loads(message)
    except ValueError as exc:
        raise MalformedPayload("the SNS Message is not JSON") from exc
    if not isinstance(inner, Mapping):
        raise MalformedPayload("the SNS Message is not a JSON object")
    return inner


def _get(value: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _header(msg: EmailMessage, name: str) -> Any:
    """A parsed header, or None when absent or so malformed that the header parser gives up (a hostile message
    must not turn into a stack trace: the header is simply not there)."""
    try:
        return msg.get(name)
    except _HEADER_ERRORS:
        return None


def _text(msg: EmailMessage, name: str) -> str | None:
    value = _header(msg, name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _ids(value: str | None) -> list[str]:
    """Message ids in a Message-ID / In-Reply-To / References value, without angle brackets, in order. A value
    without brackets counts when it is a single token (some mailers omit them)."""
    if not value:
        return []
    found = _ANGLE_ID.findall(value)
    if found:
        return list(dict.fromkeys(found))
    return [value] if _BARE_ID.match(value) else []


def _addresses(msg: EmailMessage, name: str) -> list[Party]:
    header = _header(msg, name)
    try:
        addresses = header.addresses if header is not None else ()
    except _HEADER_ERRORS:
        return []
    return [
        Party(address=address.addr_spec, name=address.display_name or None)
        for address in addresses
        if address.username and address.domain
    ]


def _unique(parties: list[Party]) -> list[Party]:
    seen: set[str] = set()
    out: list[Party] = []
    for party in parties:
        if party.address.casefold() not in seen:
            seen.add(party.address.casefold())
            out.append(party)
    return out


def _ats_id(msg: EmailMessage, name: str) -> str | None:
    value = _text(msg, name)
    return value if value and ATS_ID.match(value) else None


def _auto_submitted(value: str | None) -> str | None:
    """`auto_submitted=<RFC 3834 keyword>` (auto-replied, auto-generated, ...) for an automatic message, None for
    a person's."""
    if not value:
        return None
    keyword = value.strip().lower()
    if keyword == "no":
        return None
    match = _AUTO_KEYWORD.match(keyword)
    return f"auto_submitted={match.group(1) if match else 'yes'}"


def _occurred_at(msg: EmailMessage, received_at: datetime | None) -> datetime:
    if received_at is not None:
        return received_at.astimezone(UTC)
    header = _header(msg, "Date")
    sent = getattr(header, "datetime", None)
    if isinstance(sent, datetime):
        # "-0000" (no zone information, RFC 5322 3.3) parses naive: it is UTC.
        return sent.replace(tzinfo=UTC) if sent.utcoffset() is None else sent.astimezone(UTC)
    return clock.now()


def _body(msg: EmailMessage) -> str | None:
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
    except _HEADER_ERRORS:
        return None
    if part is None:
        return None
    text = _decoded(part)
    if text is None:
        return None
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text or None


def _decoded(part: MIMEPart) -> str | None:
    """The text of a text/* part. An unknown or lying charset still gives text (undecodable bytes replaced)."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError, AssertionError):
        content = None
    if isinstance(content, str):
        return content
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")
