"""Twilio SendGrid as provider events: the documented Event Webhook batch event by event, custom arguments, the
Inbound Parse post in both modes (raw MIME handed to the MIME parser, parsed fields read here), and the refusals."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from functions.messages.logic.providers.sendgrid import parse_inbound, parse_sendgrid
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
from tests.conftest import EVENTS

NOW = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
T = datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC)  # 1513299569, the timestamp of SendGrid's examples
KEY = "14c5d75ce93"  # sg_message_id "14c5d75ce93.dfd.64b469.filter0001..." up to its first "."
SMTP_ID = "14c5d75ce93.dfd.64b469@ismtpd-555"
ALEX = (Party("alex@example.com"),)
EVENT_ID = re.compile(r"^[A-Za-z0-9_:.@+=/-]{1,400}$")
MULTIPART = "multipart/form-data; boundary=xYzZY"


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    clock.freeze(NOW)
    yield
    clock.freeze(None)


def batch() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((EVENTS / "sendgrid_events.json").read_text())
    return loaded


def body(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


def sg(**fields: Any) -> ProviderEvent:
    """A SendGrid event with the fields most documented examples share."""
    base: dict[str, Any] = {
        "provider": Provider.SENDGRID,
        "message_key": KEY,
        "channel": Channel.EMAIL,
        "direction": Direction.OUTBOUND,
        "occurred_at": T,
        "rfc_message_id": SMTP_ID,
        "recipients": ALEX,
    }
    return ProviderEvent(**{**base, **fields})


# --- Event Webhook ------------------------------------------------------------------------------------------------


def test_the_documented_batch_event_by_event() -> None:
    events = parse_sendgrid((EVENTS / "sendgrid_events.json").read_bytes())

    assert events == [
        sg(event_id="rbtnWrG1DVDGGGFHFyun0A==", status=Status.SENT, provider_event="processed"),
        sg(
            event_id="t7LEShmowp86DTdUW8M-GQ==",
            status=Status.DELAYED,
            provider_event="deferred",
            sender=Party("test@example.com"),
            detail="smtp=400",
            attempt=5,
        ),
        sg(event_id="rWVYmVk90MjZJ9iohOBa3w==", status=Status.DELIVERED, provider_event="delivered", detail="smtp=250"),
        sg(
            event_id="6g4ZI7SA-xmRDv57GoPIPw==",
            status=Status.BOUNCED,
            provider_event="bounce",
            permanent=True,
            detail="type=bounce;status=5.0.0;smtp=500;classification=Invalid_Address",
        ),
        sg(
            event_id="6g4ZI7SA-xmRDv57GoPIPw==",  # the page reuses the bounce example's id for the block
            status=Status.BOUNCED,
            provider_event="bounce",
            permanent=True,
            detail="type=blocked;status=5.0.0;smtp=500;classification=Invalid_Address",
        ),
        sg(
            event_id="zmzJhfJgAfUSOW80yEbPyw==",
            status=Status.FAILED,
            provider_event="dropped",
            permanent=True,
            detail="reason=Bounced_Address;status=5.0.0",
        ),
        sg(event_id="FOTFFO0ecsBE-zxFXfs6WA==", status=Status.OPENED, provider_event="open", rfc_message_id=None),
        ProviderEvent(
            provider=Provider.SENDGRID,
            event_id="sendgrid_internal_event_id",
            message_key="sendgrid_internal_message_id",
            channel=Channel.EMAIL,
            direction=Direction.OUTBOUND,
            status=Status.CLICKED,
            occurred_at=datetime(2009, 8, 11, tzinfo=UTC),
            provider_event="click",
            recipients=(Party("email@example.com"),),
            tags={"unique_arg_key": "unique_arg_value"},  # the custom argument; the URL is never kept
        ),
        sg(event_id="37nvH5QBz858KGVYCM4uOA==", status=Status.COMPLAINED, provider_event="spamreport"),
        sg(
            event_id="zz_BjPgU_5pS-J8vlfB1sg==",
            status=Status.UNSUBSCRIBED,
            provider_event="unsubscribe",
            rfc_message_id=None,
        ),
        sg(
            event_id="ahSCB7xYcXFb-hEaawsPRw==",
            status=Status.UNSUBSCRIBED,
            provider_event="group_unsubscribe",
            detail="asm_group_id=10",
        ),
        sg(
            event_id="w_u0vJhLT-OFfprar5N93g==",
            status=Status.DELIVERED,  # a resubscribe proves delivery and cannot undo an unsubscribe
            provider_event="group_resubscribe",
            detail="asm_group_id=10",
        ),
    ]  # the account_status_change names no message: no event


def test_every_event_id_is_valid_and_no_address_reaches_the_detail() -> None:
    for event in parse_sendgrid((EVENTS / "sendgrid_events.json").read_bytes()):
        assert EVENT_ID.match(event.event_id)
        assert event.detail is None or "@" not in event.detail


def test_a_machine_open_says_so() -> None:
    opened = next(e for e in batch() if e["event"] == "open")
    opened["sg_machine_open"] = True

    assert parse_sendgrid(body(opened))[0].detail == "machine_open=true"


def test_the_message_is_named_by_smtp_id_when_sendgrid_leaves_its_id_out() -> None:
    bounce = next(e for e in batch() if e["event"] == "bounce")
    del bounce["sg_message_id"]  # a delayed (asynchronous) bounce

    [event] = parse_sendgrid(body(bounce))

    assert (event.message_key, event.rfc_message_id) == (KEY, SMTP_ID)


def test_an_event_naming_no_message_gives_none() -> None:
    legacy_unsubscribe = {
        "email": "nick@sendgrid.com",
        "timestamp": 1380822437,
        "newsletter": {"newsletter_user_list_id": "10557865", "newsletter_id": "1943530"},
        "category": ["Tests", "Newsletter"],
        "event": "unsubscribe",
    }

    assert parse_sendgrid(body(legacy_unsubscribe)) == []


def test_an_event_without_sg_event_id_gets_a_stable_digest() -> None:
    delivered = next(e for e in batch() if e["event"] == "delivered")
    del delivered["sg_event_id"]
    expected = hashlib.sha256(json.dumps(delivered, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    assert parse_sendgrid(body(delivered))[0].event_id == expected
    assert parse_sendgrid(body(dict(reversed(delivered.items()))))[0].event_id == expected


def test_custom_arguments_carry_the_ats_ids() -> None:
    delivered = next(e for e in batch() if e["event"] == "delivered")
    delivered.update(
        candidate_id="cand-42",
        requisition_id="req-7",
        tenant="acme",
        provider="ses",  # would steer the event to another message: never copied
        provider_message_id="x",
        note="has spaces",
        count=3,
    )

    [event] = parse_sendgrid(body(delivered))

    assert (event.candidate_id, event.requisition_id) == ("cand-42", "req-7")
    assert event.tags == {"tenant": "acme"}


def test_nested_custom_args_are_read_too() -> None:
    delivered = next(e for e in batch() if e["event"] == "delivered")
    delivered["custom_args"] = {"candidate_id": "cand-9", "stage": "interview"}

    [event] = parse_sendgrid(body(delivered))

    assert (event.candidate_id, event.tags) == ("cand-9", {"stage": "interview"})


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1591726752372, datetime(2020, 6, 9, 18, 19, 12, 372000, tzinfo=UTC)),  # Marketing Campaigns: milliseconds
        ("123456789", datetime(1973, 11, 29, 21, 33, 9, tzinfo=UTC)),  # a string, as the reserved-keys example
    ],
)
def test_timestamps_in_milliseconds_or_as_strings(timestamp: Any, expected: datetime) -> None:
    processed = {**batch()[0], "timestamp": timestamp}

    assert parse_sendgrid(body(processed))[0].occurred_at == expected


def test_event_names_are_read_as_the_reference_spells_them() -> None:
    report = {**next(e for e in batch() if e["event"] == "spamreport"), "event": "spam report"}
    processed = {**batch()[0], "event": "Processed"}

    assert [e.status for e in parse_sendgrid(body(report, processed))] == [Status.COMPLAINED, Status.SENT]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff",
        b'{"event": "processed"}',
        b"[1]",
        body({"timestamp": 1513299569, "sg_message_id": "a.b"}),
        body({"event": 7, "timestamp": 1513299569}),
        body({**batch()[0], "timestamp": "yesterday"}),
        body({**batch()[0], "timestamp": -1}),
        body({**batch()[0], "timestamp": True}),
        body({**batch()[0], "sg_message_id": "bad id/with slash.filter"}),
    ],
)
def test_a_post_that_is_not_an_event_batch_is_refused(raw: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_sendgrid(raw)


# --- Inbound Parse -------------------------------------------------------------------------------------------------


def multipart(fields: list[tuple[str, str | bytes]], files: tuple[tuple[str, str, bytes], ...] = ()) -> bytes:
    def field(name: str, value: str | bytes) -> bytes:
        data = value.encode() if isinstance(value, str) else value
        return f'--xYzZY\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + data + b"\r\n"

    parts = [field(n, v) for n, v in fields]
    parts += [
        f'--xYzZY\r\nContent-Disposition: form-data; name="{n}"; filename="{f}"\r\n'.encode()
        + b"Content-Type: application/octet-stream\r\n\r\n"
        + data
        + b"\r\n"
        for n, f, data in files
    ]
    return b"".join(parts) + b"--xYzZY--\r\n"


# The "Example Default Payload" of "Setting Up The Inbound Parse Webhook" (parsed mode): its fields, and of its
# `headers` the lines that matter (the Received and DKIM lines are left out).
DEFAULT_HEADERS = "\r\n".join(
    [
        "MIME-Version: 1.0",
        "From: Sender Name <example@example.com>",
        "Date: Wed, 27 Jul 2016 14:53:05 -0600",
        "Message-ID: <CAN_P_JMvV7ZpAQhOnDienypLrJmuhN=LQWweu4yScw4jQyXY2w@mail.gmail.com>",
        "Subject: Different File Types",
        "To: example@example.com",
        "Content-Type: multipart/mixed; boundary=001a113f8ad03e85160538a4343c",
        "",
    ]
)
DEFAULT_FIELDS: list[tuple[str, str | bytes]] = [
    ("headers", DEFAULT_HEADERS),
    ("dkim", "{@sendgrid.com : pass}"),
    ("content-ids", '{"ii_1562e2169c132d83":"attachment1"}'),
    ("to", "example@example.com"),
    ("html", '<div dir="ltr">Here&#39;s an email with multiple attachments<div> </div></div>'),
    ("from", "Sender Name example@example.com"),
    ("text", "Here's an email with multiple attachments"),
    ("sender_ip", "209.85.223.169"),
    ("envelope", '{"to":["example@example.com"],"from":"example@example.com"}'),
    ("attachments", "2"),
    ("subject", "Different File Types"),
    ("spam_score", "2.597"),
    ("charsets", '{"to":"UTF-8","html":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}'),
    ("SPF", "pass"),
]
DEFAULT_ID = "CAN_P_JMvV7ZpAQhOnDienypLrJmuhN=LQWweu4yScw4jQyXY2w@mail.gmail.com"
RAW_ID = "CAN_P_JNa25--hzm5=-ES9cnxgWa+h+E49OOAS7sPpV0gsoXCOw@mail.gmail.com"
MIME = "functions.messages.logic.providers.mime"


def with_field(name: str, value: str | bytes, fields: list[tuple[str, str | bytes]] = DEFAULT_FIELDS) -> bytes:
    return multipart([(n, value if n == name else v) for n, v in fields])


@pytest.fixture
def mime_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, dict[str, Any]]]:
    """A stand-in for `mime.parse_mime` that records what it was handed (the hand-over is the contract)."""
    calls: list[tuple[bytes, dict[str, Any]]] = []

    def parse_mime(raw: bytes, **options: Any) -> ProviderEvent:
        calls.append((raw, options))
        return MARKER

    stub = types.ModuleType(MIME)
    stub.parse_mime = parse_mime  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MIME, stub)
    return calls


MARKER = ProviderEvent(
    provider=Provider.SENDGRID,
    event_id="m",
    message_key="m",
    channel=Channel.EMAIL,
    direction=Direction.INBOUND,
    status=Status.DELIVERED,
    occurred_at=NOW,
    provider_event="received",
)
HAND_OVER = {"provider": Provider.SENDGRID, "direction": Direction.INBOUND, "received_at": NOW}


def test_the_raw_message_is_handed_to_the_mime_parser(mime_calls: list[tuple[bytes, dict[str, Any]]]) -> None:
    events = parse_inbound((EVENTS / "sendgrid_inbound_parse.txt").read_bytes(), MULTIPART)

    assert events == [MARKER]
    [(raw, options)] = mime_calls
    assert options == HAND_OVER
    assert raw.startswith(b"Received: by mx0032p1mdw1.sendgrid.net with SMTP id rOkt2xLLKV")
    assert raw.endswith(b"--001a11447dc881e40f0537fe6d5a--\r\n")
    assert b"Content-Disposition: form-data" not in raw


def test_the_parsed_fields_are_rebuilt_as_a_one_part_message(mime_calls: list[tuple[bytes, dict[str, Any]]]) -> None:
    received = datetime(2026, 11, 27, 11, 30, tzinfo=timezone(timedelta(hours=1)))
    attachment = (("attachment1", "MG_2359.jpg", b"\xff\xd8\xff\xe0 never read"),)

    parse_inbound(multipart(DEFAULT_FIELDS, attachment), MULTIPART, received_at=received)

    [(raw, options)] = mime_calls
    assert options == HAND_OVER  # the receipt time, in UTC
    assert raw.decode() == (
        "From: Sender Name <example@example.com>\r\n"
        "Date: Wed, 27 Jul 2016 14:53:05 -0600\r\n"
        f"Message-ID: <{DEFAULT_ID}>\r\n"
        "Subject: Different File Types\r\n"
        "To: example@example.com\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Here's an email with multiple attachments"
    )


def test_a_folded_structure_header_goes_with_its_continuation(mime_calls: list[tuple[bytes, dict[str, Any]]]) -> None:
    headers = DEFAULT_HEADERS.replace(
        "Content-Type: multipart/mixed; boundary=001a113f8ad03e85160538a4343c",
        "Content-Type: multipart/mixed;\r\n boundary=001a113f8ad03e85160538a4343c\r\nX-Mailer: Thing\r\n v2",
    )

    parse_inbound(with_field("headers", headers), MULTIPART)

    head = mime_calls[0][0].decode().split("\r\n\r\n", 1)[0]
    assert "boundary=" not in head
    assert "X-Mailer: Thing\r\n v2" in head


def test_the_text_body_is_decoded_with_the_charset_sendgrid_reports(
    mime_calls: list[tuple[bytes, dict[str, Any]]],
) -> None:
    fields = [(n, v) for n, v in DEFAULT_FIELDS if n != "charsets"] + [("charsets", '{"text":"iso-8859-1"}')]

    parse_inbound(with_field("text", "Entrevue confirmée".encode("latin-1"), fields), MULTIPART)

    assert mime_calls[0][0].endswith("Entrevue confirmée".encode())


def test_an_html_only_post_is_rebuilt_as_html(mime_calls: list[tuple[bytes, dict[str, Any]]]) -> None:
    parse_inbound(multipart([(n, v) for n, v in DEFAULT_FIELDS if n != "text"]), MULTIPART)

    raw = mime_calls[0][0]
    assert b"\r\nContent-Type: text/html; charset=utf-8\r\n" in raw
    assert raw.endswith(b'\r\n\r\n<div dir="ltr">Here&#39;s an email with multiple attachments<div> </div></div>')


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (multipart(DEFAULT_FIELDS), "application/json"),
        (multipart(DEFAULT_FIELDS), "multipart/form-data"),
        (multipart(DEFAULT_FIELDS), "multipart/form-data; boundary=xYzZY\r\nX-Injected: 1"),
        (multipart(DEFAULT_FIELDS), "multipart/form-data; boundary=xYzZ\u00ff"),
        (b"no parts at all", MULTIPART),
        (multipart([(n, v) for n, v in DEFAULT_FIELDS if n != "headers"]), MULTIPART),
    ],
)
def test_a_post_that_is_not_an_inbound_parse_post_is_refused(
    raw: bytes, content_type: str, mime_calls: list[tuple[bytes, dict[str, Any]]]
) -> None:
    with pytest.raises(MalformedPayload):
        parse_inbound(raw, content_type)
    assert mime_calls == []


# --- Inbound Parse through the real MIME parser (functions/messages/logic/providers/mime.py) ----------------------


def test_the_documented_raw_post() -> None:
    pytest.importorskip(MIME)

    [event] = parse_inbound((EVENTS / "sendgrid_inbound_parse.txt").read_bytes(), MULTIPART)

    assert (event.provider, event.channel, event.direction) == (Provider.SENDGRID, Channel.EMAIL, Direction.INBOUND)
    assert (event.event_id, event.message_key, event.rfc_message_id) == (RAW_ID, RAW_ID, RAW_ID)
    assert (event.status, event.occurred_at, event.subject) == (Status.DELIVERED, NOW, "Hello")
    assert event.sender == Party("example@example.com", "Sender Name")
    assert event.recipients == (Party("example@example.com"),)
    assert event.body == "This is a test email with 1 attachment."


def test_the_documented_parsed_post() -> None:
    pytest.importorskip(MIME)

    [event] = parse_inbound(multipart(DEFAULT_FIELDS), MULTIPART)

    assert event == ProviderEvent(
        provider=Provider.SENDGRID,
        event_id=DEFAULT_ID,
        message_key=DEFAULT_ID,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        status=Status.DELIVERED,
        occurred_at=NOW,  # when SendGrid posted it: the Date header is the sender's claim
        provider_event="received",
        rfc_message_id=DEFAULT_ID,
        sender=Party("example@example.com", "Sender Name"),
        recipients=(Party("example@example.com"),),
        subject="Different File Types",
        body="Here's an email with multiple attachments",
    )


def test_an_html_only_parsed_post_reads_as_text() -> None:
    pytest.importorskip(MIME)

    [event] = parse_inbound(multipart([(n, v) for n, v in DEFAULT_FIELDS if n != "text"]), MULTIPART)

    assert event.body == "Here's an email with multiple attachments"


def test_both_settings_of_the_raw_checkbox_give_the_same_event_for_one_mail() -> None:
    pytest.importorskip(MIME)
    raw_post = (EVENTS / "sendgrid_inbound_parse.txt").read_bytes()
    [raw] = parse_inbound(raw_post, MULTIPART)
    headers = raw_post.split(b'name="email"\r\n\r\n', 1)[1].split(b"\r\n\r\n", 1)[0].decode()

    [parsed] = parse_inbound(
        multipart([("headers", headers), ("text", "This is a test email with 1 attachment.\n")]), MULTIPART
    )

    assert parsed == raw


def test_a_parsed_reply_threads_but_does_not_trust_the_ats_headers() -> None:
    pytest.importorskip(MIME)
    headers = DEFAULT_HEADERS.replace(
        "Subject: Different File Types",
        "Subject: =?utf-8?q?Re=3A_Entretien_pr=C3=A9vu?=\r\n"
        "In-Reply-To: <offer-1@ats.example.com>\r\n"
        "References: <root-1@ats.example.com> <offer-1@ats.example.com>\r\n"
        "Cc: =?utf-8?q?Ren=C3=A9e?= <renee@example.com>\r\n"
        "X-ATS-Candidate-Id: cand-42",
    )

    [event] = parse_inbound(with_field("headers", headers), MULTIPART)

    assert event.status is Status.REPLIED
    assert (event.in_reply_to, event.references) == (
        "offer-1@ats.example.com",
        ("root-1@ats.example.com", "offer-1@ats.example.com"),
    )
    assert event.subject == "Re: Entretien prévu"
    assert event.recipients == (Party("example@example.com"), Party("renee@example.com", "Renée"))
    assert event.candidate_id is None  # anyone can write that header on inbound mail; the thread names the candidate


def test_a_parsed_post_without_message_id_is_keyed_by_its_content_stably() -> None:
    pytest.importorskip(MIME)
    headers = "\r\n".join(line for line in DEFAULT_HEADERS.split("\r\n") if not line.startswith("Message-ID"))

    first = parse_inbound(with_field("headers", headers), MULTIPART)
    again = parse_inbound(with_field("headers", headers), MULTIPART)

    assert first == again
    assert re.fullmatch(r"[0-9a-f]{64}", first[0].event_id)
    assert first[0].rfc_message_id is None
