"""Twilio messaging webhooks as provider events: the documented status callback and incoming message, every
status, WhatsApp addresses, error codes, and the refusals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest

from functions.messages.logic.providers.twilio import parse_twilio
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
SID = "SM1342fe1b2c904d1ab04f0fc7a58abca9"
EVENT_ID = re.compile(r"^[A-Za-z0-9_:.@+=/-]{1,400}$")


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    clock.freeze(NOW)
    yield
    clock.freeze(None)


def form(name: str) -> dict[str, str]:
    """A form-encoded sample, decoded as the receiver does (functions/messages/logic/sources.py)."""
    return dict(parse_qsl((EVENTS / name).read_text(), keep_blank_values=True, strict_parsing=True))


def callback(status: str, **extra: str) -> dict[str, str]:
    return {**form("twilio_status_callback.txt"), "MessageStatus": status, "SmsStatus": status, **extra}


def test_the_documented_status_callback() -> None:
    assert parse_twilio(form("twilio_status_callback.txt")) == [
        ProviderEvent(
            provider=Provider.TWILIO,
            event_id=f"{SID}-sent",
            message_key=SID,
            channel=Channel.SMS,
            direction=Direction.OUTBOUND,
            status=Status.SENT,
            occurred_at=NOW,  # Twilio sends no time: the clock's
            provider_event="sent",
            sender=Party("+15017250604"),
            tags={"account_sid": "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
        )
    ]


def test_the_documented_incoming_message() -> None:
    received = datetime(2026, 11, 27, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    sid = "SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"

    assert parse_twilio(form("twilio_inbound_sms.txt"), received_at=received) == [
        ProviderEvent(
            provider=Provider.TWILIO,
            event_id=sid,
            message_key=sid,
            channel=Channel.SMS,
            direction=Direction.INBOUND,
            status=Status.DELIVERED,
            occurred_at=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
            provider_event="received",
            sender=Party("+14017122661"),
            recipients=(Party("+15558675310"),),
            body="Ahoy! Let's build something amazing.",
            tags={
                "account_sid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
                "messaging_service_sid": "MGXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            },
        )
    ]


@pytest.mark.parametrize(
    ("message_status", "status", "permanent"),
    [
        ("accepted", Status.QUEUED, False),
        ("scheduled", Status.QUEUED, False),
        ("queued", Status.QUEUED, False),
        ("sending", Status.QUEUED, False),
        ("sent", Status.SENT, False),
        ("delivered", Status.DELIVERED, False),
        ("undelivered", Status.UNDELIVERED, True),
        ("failed", Status.FAILED, True),
        ("canceled", Status.FAILED, True),
        ("read", Status.OPENED, False),
    ],
)
def test_every_outbound_status(message_status: str, status: Status, permanent: bool) -> None:
    [event] = parse_twilio(callback(message_status))

    assert (event.status, event.permanent, event.direction) == (status, permanent, Direction.OUTBOUND)
    assert (event.event_id, event.provider_event, event.body) == (f"{SID}-{message_status}", message_status, None)


@pytest.mark.parametrize(("sms_status", "status"), [("receiving", Status.QUEUED), ("received", Status.DELIVERED)])
def test_the_inbound_statuses(sms_status: str, status: Status) -> None:
    inbound = {**form("twilio_inbound_sms.txt"), "SmsStatus": sms_status}

    [event] = parse_twilio(inbound)

    assert (event.status, event.direction) == (status, Direction.INBOUND)


def test_an_undelivered_message_carries_its_error_code_in_the_id_and_the_detail() -> None:
    [event] = parse_twilio(callback("undelivered", ErrorCode="30003", To="+15558675310"))

    assert event.event_id == f"{SID}-undelivered-30003"
    assert (event.detail, event.permanent, event.status) == ("error=30003", True, Status.UNDELIVERED)
    assert event.recipients == (Party("+15558675310"),)


def test_a_status_callback_is_the_same_event_when_replayed() -> None:
    first = parse_twilio(callback("delivered"), received_at=NOW)
    clock.freeze(NOW + timedelta(minutes=5))
    again = parse_twilio(callback("delivered"))

    assert first[0].event_id == again[0].event_id
    assert again[0].occurred_at == NOW + timedelta(minutes=5)


def test_a_whatsapp_reply_is_an_sms_with_its_channel_in_the_detail() -> None:
    whatsapp = {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": "AC" + "b" * 32,
        "From": "whatsapp:+14017122661",
        "To": "whatsapp:+14155238886",
        "Body": "Yes, Tuesday works",
        "ProfileName": "Perspective Coffee",
        "WaId": "14017122661",
        "NumMedia": "0",
        "SmsStatus": "received",
    }

    [event] = parse_twilio(whatsapp)

    assert event.channel is Channel.SMS
    assert event.sender == Party("+14017122661", "Perspective Coffee")
    assert event.recipients == (Party("+14155238886"),)
    assert event.detail == "channel=whatsapp"
    assert event.body == "Yes, Tuesday works"


def test_a_whatsapp_read_receipt() -> None:
    read = callback("read", From="whatsapp:+15017250604", ChannelPrefix="whatsapp", EventType="READ")

    [event] = parse_twilio(read)

    assert (event.status, event.detail, event.sender) == (Status.OPENED, "channel=whatsapp", Party("+15017250604"))


def test_an_incoming_mms_counts_its_media_but_keeps_no_link() -> None:
    mms = {**form("twilio_inbound_sms.txt"), "NumMedia": "2", "MediaUrl0": "https://api.twilio.com/x/Media/ME1"}

    [event] = parse_twilio(mms)

    assert event.detail == "media=2"
    assert "api.twilio.com" not in repr(event)


def test_an_incoming_message_without_a_status_is_received() -> None:
    bare = {k: v for k, v in form("twilio_inbound_sms.txt").items() if k not in ("SmsStatus", "ApiVersion")}

    [event] = parse_twilio(bare)

    assert (event.status, event.direction, event.provider_event) == (Status.DELIVERED, Direction.INBOUND, "received")


def test_a_status_twilio_adds_later_gives_no_event() -> None:
    assert parse_twilio(callback("partially_delivered")) == []


def test_every_event_id_is_a_valid_event_id() -> None:
    for event in [*parse_twilio(callback("failed", ErrorCode="30008")), *parse_twilio(form("twilio_inbound_sms.txt"))]:
        assert EVENT_ID.match(event.event_id)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"MessageStatus": "sent"},
        callback("sent", MessageSid="SM123", SmsSid="SM123"),
        callback("sent", MessageSid="SM" + "a" * 31 + "/", SmsSid=""),
        {"MessageSid": SID},
        callback("failed", ErrorCode="thirty"),
        callback("sent", To="+1" + "5" * 300),
    ],
)
def test_a_form_that_is_not_a_twilio_webhook_is_refused(bad: dict[str, str]) -> None:
    with pytest.raises(MalformedPayload):
        parse_twilio(bad)
