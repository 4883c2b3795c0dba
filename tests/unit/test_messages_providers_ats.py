"""Messages the ATS records through the API: the body models (functions/messages/models/record_io.py) and their
event (functions/messages/logic/providers/ats.py)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from functions.messages.logic.lifecycle import message_id_for, message_id_of
from functions.messages.logic.providers.ats import CLOCK_SKEW, parse_recorded
from functions.messages.logic.providers.mime import parse_mime
from functions.messages.models.message import (
    Channel,
    Direction,
    MalformedPayload,
    Party,
    Provider,
    ProviderEvent,
    Status,
)
from functions.messages.models.record_io import MAX_BATCH, RecordBatch, RecordedMessage

RECEIVED = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
SENT_AT = datetime(2026, 11, 27, 10, 29, 58, 250000, tzinfo=timezone(timedelta(hours=1)))  # 09:29:58.25 UTC


def email(**changes: Any) -> dict[str, Any]:
    """A recorded outbound email sent through SES, as the ATS posts it."""
    body: dict[str, Any] = {
        "message_id": "msg-2026-0001",
        "channel": "email",
        "direction": "outbound",
        "status": "sent",
        "occurred_at": SENT_AT.isoformat(),
        "provider": "ses",
        "provider_message_id": "0000014fbe1c09cf-7cb9f704-7531-4e53-89a1-5fa9744f5eb6-000000",
        "candidate_id": "cand-42",
        "requisition_id": "req-7",
        "sender": {"address": "jobs@acme.example", "name": "Acme Recruiting"},
        "recipients": [{"address": "cand@example.org", "name": "Cand Idate"}],
        "subject": "Interview invitation",
        "body": "Dear Cand, ...",
        "rfc_message_id": "<msg-2026-0001@acme.example>",
        "in_reply_to": None,
        "references": [],
    }
    body.update(changes)
    return body


def sms(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": "sms-9",
        "channel": "sms",
        "direction": "outbound",
        "status": "queued",
        "occurred_at": "2026-11-27T09:00:00Z",
        "provider": "twilio",
        "provider_message_id": "SM1342fe1b2c904d1ab04f0fc7a58abca9",
        "sender": {"address": "ACME"},
        "recipients": [{"address": "+14155551234"}],
        "body": "Your interview is confirmed",
    }
    body.update(changes)
    return body


def record(body: dict[str, Any]) -> RecordedMessage:
    return RecordedMessage.model_validate(body)


# ---- the event -------------------------------------------------------------------------------------------------


def test_a_recorded_email_becomes_an_ats_event_with_every_field() -> None:
    event = parse_recorded("acme", record(email()), received_at=RECEIVED)

    occurred = datetime(2026, 11, 27, 9, 29, 58, 250000, tzinfo=UTC)
    assert event == ProviderEvent(
        provider=Provider.ATS,
        event_id=f"msg-2026-0001:sent:{int(occurred.timestamp() * 1000)}",
        message_key="msg-2026-0001",
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        status=Status.SENT,
        occurred_at=occurred,
        provider_event="recorded",
        rfc_message_id="msg-2026-0001@acme.example",
        in_reply_to=None,
        references=(),
        conversation_id=None,
        sender=Party(address="jobs@acme.example", name="Acme Recruiting"),
        recipients=(Party(address="cand@example.org", name="Cand Idate"),),
        subject="Interview invitation",
        body="Dear Cand, ...",
        candidate_id="cand-42",
        requisition_id="req-7",
        permanent=False,
        detail=None,
        attempt=None,
        tags={
            "provider": "ses",
            "provider_message_id": "0000014fbe1c09cf-7cb9f704-7531-4e53-89a1-5fa9744f5eb6-000000",
        },
    )
    assert event.occurred_at.tzinfo is UTC


def test_the_ats_record_and_the_providers_events_meet_on_one_message() -> None:
    recorded = parse_recorded("acme", record(email()), received_at=RECEIVED)

    assert message_id_of("acme", recorded) == message_id_for(
        "acme", "ses", "0000014fbe1c09cf-7cb9f704-7531-4e53-89a1-5fa9744f5eb6-000000"
    )


def test_recording_the_same_message_again_is_the_same_event_and_a_new_status_is_not() -> None:
    first = parse_recorded("acme", record(email()), received_at=RECEIVED)
    again = parse_recorded("acme", record(email()), received_at=RECEIVED + timedelta(minutes=3))
    delivered = parse_recorded("acme", record(email(status="delivered")), received_at=RECEIVED)

    assert again.event_id == first.event_id
    assert delivered.event_id != first.event_id
    assert delivered.message_key == first.message_key


def test_a_recorded_sms_without_content_ids() -> None:
    event = parse_recorded("acme", record(sms()), received_at=RECEIVED)

    assert (event.channel, event.status, event.message_key) == (Channel.SMS, Status.QUEUED, "sms-9")
    assert event.sender == Party(address="ACME")
    assert event.recipients == (Party(address="+14155551234"),)
    assert event.tags == {"provider": "twilio", "provider_message_id": "SM1342fe1b2c904d1ab04f0fc7a58abca9"}
    assert (event.rfc_message_id, event.subject, event.candidate_id) == (None, None, None)


def test_a_message_recorded_without_a_provider_has_no_join_tags() -> None:
    body = email(channel="portal", provider=None, provider_message_id=None, rfc_message_id=None)
    body["sender"] = {"address": "recruiter-17"}
    body["recipients"] = [{"address": "cand-42"}]

    event = parse_recorded("acme", record(body), received_at=RECEIVED)

    assert event.tags == {}
    assert message_id_of("acme", event) == message_id_for("acme", "ats", "msg-2026-0001")


def test_a_full_sendgrid_message_id_is_cut_to_the_key_its_events_use() -> None:
    body = email(provider="sendgrid", provider_message_id="14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0")

    event = parse_recorded("acme", record(body), received_at=RECEIVED)

    assert event.tags == {"provider": "sendgrid", "provider_message_id": "14c5d75ce93"}


def test_an_smtp_message_joins_its_captured_copy_by_message_id() -> None:
    body = email(provider="smtp", provider_message_id=None, rfc_message_id="<a$b@acme.example>")
    captured = parse_mime(
        b"From: jobs@acme.example\r\nTo: cand@example.org\r\nMessage-ID: <a$b@acme.example>\r\n\r\nHello\r\n",
        direction=Direction.OUTBOUND,
    )

    event = parse_recorded("acme", record(body), received_at=RECEIVED)

    assert event.tags == {"provider": "smtp", "provider_message_id": hashlib.sha256(b"a$b@acme.example").hexdigest()}
    assert message_id_of("acme", event) == message_id_of("acme", captured)


def test_a_teams_message_names_its_chat() -> None:
    chat = "19:8ea0e38b-efb3-4757-924a-5f94061cf8c2_97f62344-57dc-409c-88ad-c4af14158ff5@unq.gbl.spaces"
    body = email(
        channel="teams",
        provider="graph",
        provider_message_id="1612289765949",
        conversation_id=chat,
        rfc_message_id=None,
        sender={"address": "8ea0e38b-efb3-4757-924a-5f94061cf8c2", "name": "Ramjot Singh"},
        recipients=[],
    )

    event = parse_recorded("acme", record(body), received_at=RECEIVED)

    assert (event.channel, event.conversation_id) == (Channel.TEAMS, chat)
    assert event.tags == {"provider": "graph", "provider_message_id": "1612289765949"}


def test_an_inbound_reply_keeps_its_thread() -> None:
    body = email(
        direction="inbound",
        status="replied",
        provider=None,
        provider_message_id=None,
        rfc_message_id="reply-1@example.org",
        in_reply_to="<msg-2026-0001@acme.example>",
        references=["<msg-2026-0001@acme.example>"],
    )

    event = parse_recorded("acme", record(body), received_at=RECEIVED)

    assert (event.direction, event.status) == (Direction.INBOUND, Status.REPLIED)
    assert (event.in_reply_to, event.references) == ("msg-2026-0001@acme.example", ("msg-2026-0001@acme.example",))


def test_a_record_from_the_future_is_refused_beyond_the_clock_skew() -> None:
    within = email(occurred_at=(RECEIVED + CLOCK_SKEW).isoformat())
    beyond = email(occurred_at=(RECEIVED + CLOCK_SKEW + timedelta(seconds=1)).isoformat())

    assert parse_recorded("acme", record(within), received_at=RECEIVED).occurred_at == RECEIVED + CLOCK_SKEW
    with pytest.raises(MalformedPayload, match="future"):
        parse_recorded("acme", record(beyond), received_at=RECEIVED)


def test_caller_bugs_are_value_errors() -> None:
    with pytest.raises(ValueError, match="tenant"):
        parse_recorded("", record(email()), received_at=RECEIVED)
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_recorded("acme", record(email()), received_at=datetime(2026, 11, 27))  # noqa: DTZ001


# ---- the body model --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (email(unexpected="x"), "Extra inputs are not permitted"),
        (email(message_id="-starts-with-dash"), "message_id"),
        (email(message_id="x" * 201), "message_id"),
        (email(candidate_id="cand 42"), "candidate_id"),
        (email(occurred_at="2026-11-27T09:00:00"), "timezone"),
        (email(status="read"), "status"),
        (email(provider_message_id=None), "provider needs provider_message_id"),
        (email(provider=None), "provider_message_id needs provider"),
        (email(provider="ats"), "is not one"),
        (email(provider="twilio"), "does not carry email"),
        (sms(provider="ses"), "does not carry sms"),
        (email(recipients=[{"address": "not an address"}]), "not a email address"),
        (sms(recipients=[{"address": "+44 20 7946 0000"}]), "not a sms address"),
        (sms(rfc_message_id="a@b"), "belong to email"),
        (email(recipients=[{"address": "cand@example.org"}] * 101), "recipients"),
        (email(references=["<r@x>"] * 101), "references"),
        (email(rfc_message_id="has space@x"), "rfc_message_id"),
        (email(subject="s" * 999), "subject"),
        (email(body="b" * 50_001), "body"),
        (email(sender={"address": "jobs@acme.example", "name": ""}), "name"),
        (email(sender={"address": "x" * 321}), "address"),
    ],
)
def test_a_body_outside_the_limits_is_refused(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        record(body)


def test_a_validation_error_does_not_repeat_the_input() -> None:
    with pytest.raises(ValidationError) as refused:
        record(email(recipients=[{"address": "secret.person@example.org", "name": 12}]))

    assert "secret.person@example.org" not in str(refused.value)


def test_whatsapp_and_short_codes_are_sms_addresses() -> None:
    body = sms(sender={"address": "whatsapp:+14155238886"}, recipients=[{"address": "whatsapp:+15005550006"}])
    short = sms(sender={"address": "84321"})

    assert record(body).sender is not None
    assert record(short).sender is not None


def test_a_batch_holds_one_to_a_hundred_distinct_messages() -> None:
    batch = RecordBatch.model_validate({"messages": [email(), sms()]})

    assert [m.message_id for m in batch.messages] == ["msg-2026-0001", "sms-9"]
    with pytest.raises(ValidationError, match="at least 1"):
        RecordBatch.model_validate({"messages": []})
    with pytest.raises(ValidationError, match=f"at most {MAX_BATCH}"):
        RecordBatch.model_validate({"messages": [email(message_id=f"m-{i}") for i in range(MAX_BATCH + 1)]})
    with pytest.raises(ValidationError, match="appears twice"):
        RecordBatch.model_validate({"messages": [email(), email()]})
    with pytest.raises(ValidationError, match="Extra inputs"):
        RecordBatch.model_validate({"messages": [email()], "more": 1})
