"""Raw MIME as events (functions/messages/logic/providers/mime.py), and the S3 / SES receiving notifications that
name a captured message. The samples come from the RFCs and the AWS documentation (events/README.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from functions.messages.logic.providers.mime import (
    MAX_REFERENCES,
    html_to_text,
    message_key_for,
    parse_mime,
    parse_s3_notification,
    parse_ses_receipt,
    thread_root,
)
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
from tests.conftest import sample_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
REPLY = (EVENTS / "mime_reply.eml").read_bytes()
RECEIVED = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def message(headers: dict[str, str], body: str = "Hello", *, html: str | None = None) -> bytes:
    """A message built with the standard library, so the bytes are what a real mailer would write."""
    msg = EmailMessage()
    for name, value in headers.items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


BASE = {
    "From": "Jane Recruiter <jane@acme.example>",
    "To": "Cand Idate <cand@example.org>",
    "Subject": "Your application",
    "Date": "Thu, 26 Nov 2026 10:00:00 +0000",
    "Message-ID": "<out-1@acme.example>",
}


# ---- the sample: RFC 2047 section 8 headers on the RFC 5322 A.2 reply ----------------------------------------


def test_the_sample_reply_parses_into_every_field() -> None:
    event = parse_mime(REPLY)

    assert event == ProviderEvent(
        provider=Provider.SMTP,
        event_id="abcd.1234@local.machine.example",
        message_key="abcd.1234@local.machine.example",
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        status=Status.REPLIED,
        occurred_at=datetime(1997, 11, 21, 17, 0, tzinfo=UTC),  # Fri, 21 Nov 1997 11:00:00 -0600
        provider_event="received",
        rfc_message_id="abcd.1234@local.machine.example",
        in_reply_to="3456@example.net",
        references=("1234@local.machine.example", "3456@example.net"),
        conversation_id=None,
        sender=Party(address="moore@cs.utk.edu", name="Keith Moore"),
        recipients=(
            Party(address="keld@dkuug.dk", name="Keld Jørn Simonsen"),
            Party(address="PIRARD@vm1.ulg.ac.be", name="André Pirard"),
        ),
        subject="If you can read this you understand the example.",
        body="This is a reply to your reply.",
        candidate_id=None,
        requisition_id=None,
        permanent=False,
        detail=None,
        attempt=None,
        tags={},
    )
    assert event.occurred_at.tzinfo is UTC


def test_the_sample_thread_root_is_the_first_reference() -> None:
    assert thread_root(parse_mime(REPLY)) == "1234@local.machine.example"


def test_thread_root_falls_back_to_in_reply_to_then_the_message_itself() -> None:
    reply = parse_mime(message({**BASE, "In-Reply-To": "<root@acme.example>"}))
    alone = parse_mime(message(BASE))
    without_id = parse_mime(message({k: v for k, v in BASE.items() if k != "Message-ID"}))

    assert thread_root(reply) == "root@acme.example"
    assert thread_root(alone) == "out-1@acme.example"
    assert thread_root(without_id) == without_id.message_key


def test_received_at_is_the_time_of_the_event_not_the_senders_date() -> None:
    event = parse_mime(REPLY, received_at=RECEIVED.astimezone(timezone(timedelta(hours=2))))

    assert event.occurred_at == RECEIVED
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_a_naive_received_at_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_mime(REPLY, received_at=datetime(2026, 11, 27, 9, 30))  # noqa: DTZ001


def test_the_caller_names_the_provider() -> None:
    assert parse_mime(REPLY, provider=Provider.SENDGRID).provider is Provider.SENDGRID


# ---- direction, status and the ATS headers ---------------------------------------------------------------------


def test_outbound_mail_is_sent_and_carries_the_ats_ids() -> None:
    raw = message({**BASE, "X-ATS-Candidate-Id": "cand-42", "X-ATS-Requisition-Id": "req:7"})

    event = parse_mime(raw, direction=Direction.OUTBOUND, received_at=RECEIVED)

    assert (event.direction, event.status, event.provider_event) == (Direction.OUTBOUND, Status.SENT, "sent")
    assert (event.candidate_id, event.requisition_id) == ("cand-42", "req:7")
    assert event.sender == Party(address="jane@acme.example", name="Jane Recruiter")
    assert event.recipients == (Party(address="cand@example.org", name="Cand Idate"),)
    assert event.body == "Hello"


def test_inbound_mail_cannot_claim_a_candidate_through_headers() -> None:
    raw = message({**BASE, "X-ATS-Candidate-Id": "someone-else", "X-ATS-Requisition-Id": "req-1"})

    event = parse_mime(raw, direction=Direction.INBOUND)

    assert (event.candidate_id, event.requisition_id) == (None, None)


def test_an_ats_header_that_is_not_an_id_is_ignored() -> None:
    raw = message({**BASE, "X-ATS-Candidate-Id": "cand 42; drop", "X-ATS-Requisition-Id": "-leading-dash"})

    event = parse_mime(raw, direction=Direction.OUTBOUND)

    assert (event.candidate_id, event.requisition_id) == (None, None)


def test_inbound_mail_that_replies_to_nothing_is_delivered() -> None:
    event = parse_mime(message(BASE))

    assert (event.direction, event.status, event.provider_event) == (Direction.INBOUND, Status.DELIVERED, "received")


def test_an_automatic_reply_is_delivery_not_an_answer() -> None:
    raw = message({**BASE, "In-Reply-To": "<out-0@acme.example>", "Auto-Submitted": "auto-replied"})

    event = parse_mime(raw)

    assert (event.status, event.detail, event.in_reply_to) == (
        Status.DELIVERED,
        "auto_submitted=auto-replied",
        "out-0@acme.example",
    )


def test_the_ats_own_automatic_mail_is_simply_sent() -> None:
    raw = message({**BASE, "Auto-Submitted": "auto-generated"})

    event = parse_mime(raw, direction=Direction.OUTBOUND)

    assert (event.status, event.detail) == (Status.SENT, None)


def test_auto_submitted_no_is_a_person_writing() -> None:
    raw = message({**BASE, "In-Reply-To": "<out-0@acme.example>", "Auto-Submitted": "no"})

    assert (parse_mime(raw).status, parse_mime(raw).detail) == (Status.REPLIED, None)


# ---- ids -------------------------------------------------------------------------------------------------------


def test_a_message_id_outside_the_event_id_alphabet_is_hashed_but_kept_as_the_rfc_id() -> None:
    raw = message({**BASE, "Message-ID": "<a$b%c{d}@example.org>"})

    event = parse_mime(raw)

    digest = hashlib.sha256(b"a$b%c{d}@example.org").hexdigest()
    assert (event.event_id, event.message_key, event.rfc_message_id) == (digest, digest, "a$b%c{d}@example.org")
    assert message_key_for("a$b%c{d}@example.org") == digest


def test_a_message_without_message_id_is_named_by_its_bytes() -> None:
    raw = message({k: v for k, v in BASE.items() if k != "Message-ID"})

    event = parse_mime(raw)

    assert event.event_id == event.message_key == hashlib.sha256(raw).hexdigest()
    assert event.rfc_message_id is None
    assert parse_mime(raw).event_id == event.event_id  # a replay is the same event


def test_a_message_id_with_a_comment_and_without_brackets() -> None:
    with_comment = parse_mime(message({**BASE, "Message-ID": "<x.1@example.org> (from the relay)"}))
    bare = parse_mime(message({**BASE, "Message-ID": "x.2@example.org"}))

    assert with_comment.rfc_message_id == "x.1@example.org"
    assert bare.rfc_message_id == "x.2@example.org"


def test_a_very_long_references_chain_keeps_its_root_and_newest_ids() -> None:
    ids = [f"<m{i}@example.org>" for i in range(150)]
    event = parse_mime(message({**BASE, "References": " ".join(ids), "In-Reply-To": ids[-1]}))

    assert len(event.references) == MAX_REFERENCES
    assert event.references[0] == "m0@example.org"
    assert event.references[1] == "m51@example.org"
    assert event.references[-1] == "m149@example.org"


# ---- dates -----------------------------------------------------------------------------------------------------


def test_a_date_without_zone_information_is_utc() -> None:
    event = parse_mime(message({**BASE, "Date": "Fri, 21 Nov 1997 09:55:06 -0000"}))

    assert event.occurred_at == datetime(1997, 11, 21, 9, 55, 6, tzinfo=UTC)


def test_without_a_usable_date_the_event_is_the_platform_clocks_now() -> None:
    clock.freeze(RECEIVED)
    try:
        event = parse_mime(message({**BASE, "Date": "sometime last week"}))
    finally:
        clock.freeze(None)

    assert event.occurred_at == RECEIVED


# ---- bodies ----------------------------------------------------------------------------------------------------


def test_the_plain_part_of_an_alternative_is_the_body() -> None:
    raw = message(BASE, "Plain words\r\nsecond line", html="<p>HTML words</p>")

    assert parse_mime(raw).body == "Plain words\nsecond line"


def test_an_html_only_message_is_reduced_to_text() -> None:
    msg = EmailMessage()
    for name, value in BASE.items():
        msg[name] = value
    msg.set_content(
        "<html><head><title>t</title><style>p {color: red}</style></head><body>"
        "<p>Dear&nbsp;Cand,</p><p>Interview on <b>Monday</b> &amp; Tuesday.</p><script>track()</script>"
        "</body></html>",
        subtype="html",
    )

    assert parse_mime(msg.as_bytes()).body == "Dear Cand,\n\nInterview on Monday & Tuesday."


def test_a_latin1_quoted_printable_body_is_decoded() -> None:
    raw = (
        b"From: a@example.org\r\nMessage-ID: <l1@example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Gr=FC=DFe aus K=F6ln\r\n"
    )

    assert parse_mime(raw).body == "Grüße aus Köln"


def test_an_unknown_charset_still_gives_text() -> None:
    raw = (
        b"From: a@example.org\r\nMessage-ID: <u1@example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=x-unknown-8\r\n\r\nplain ascii \xff\r\n"
    )

    assert parse_mime(raw).body == "plain ascii \ufffd"


def test_a_message_with_only_an_attachment_has_no_body() -> None:
    msg = EmailMessage()
    for name, value in BASE.items():
        msg[name] = value
    msg.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="cv.pdf")

    event = parse_mime(msg.as_bytes())

    assert event.body is None
    assert event.subject == "Your application"


def test_html_to_text_keeps_teams_emoji_and_line_structure() -> None:
    html = (
        '<div><div>Hello <at id="0">Jane</at> <emoji id="smile" alt="🙂" title="Smile"></emoji></div>'
        "<p>Line&nbsp;two&nbsp;&amp; more</p><br><ul><li>one</li><li>two</li></ul></div>"
    )

    assert html_to_text(html) == "Hello Jane 🙂\n\nLine two & more\n\none\n\ntwo"


# ---- hostile or broken input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"\r\nno headers at all\r\n", b"just some text\r\n"])
def test_something_that_is_not_a_message_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_mime(raw)


def test_broken_address_headers_give_no_parties_instead_of_an_error() -> None:
    raw = b'From: <<<>>>\r\nTo: ,,, ; "unterminated\r\nCc: undisclosed-recipients:;\r\nMessage-ID: <b1@x>\r\n\r\nhi\r\n'

    event = parse_mime(raw)

    assert event.sender is None
    assert event.recipients == ()
    assert event.body == "hi"


def test_recipients_are_deduplicated_across_to_and_cc() -> None:
    raw = message({**BASE, "To": "A <a@example.org>, b@example.org", "Cc": "A Again <A@EXAMPLE.ORG>, c@example.org"})

    event = parse_mime(raw)

    assert [party.address for party in event.recipients] == ["a@example.org", "b@example.org", "c@example.org"]


# ---- S3 event notifications ------------------------------------------------------------------------------------


def test_the_s3_sample_names_its_object() -> None:
    assert parse_s3_notification(sample_event("s3_object_created_mime.json")) == [("mybucket", "HappyFace.jpg")]


def test_s3_keys_arrive_url_encoded_and_leave_decoded() -> None:
    event = sample_event("s3_object_created_mime.json")
    event["Records"][0]["s3"]["object"]["key"] = "inbound/red+flower%2B1.eml"

    assert parse_s3_notification(event) == [("mybucket", "inbound/red flower+1.eml")]


def test_the_s3_test_message_names_nothing() -> None:
    # "Amazon S3 test message", same page as the sample.
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2014-10-13T15:57:02.089Z",
        "Bucket": "bucketname",
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }

    assert parse_s3_notification(test_event) == []


def test_removals_are_not_messages() -> None:
    event = sample_event("s3_object_created_mime.json")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"

    assert parse_s3_notification(event) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.pop("Records"),
        lambda e: e["Records"][0].update(eventSource="aws:sqs"),
        lambda e: e["Records"][0]["s3"]["object"].pop("key"),
        lambda e: e["Records"][0]["s3"].update(bucket="mybucket"),
    ],
    ids=["no-records", "not-s3", "no-key", "bucket-not-object"],
)
def test_a_broken_s3_notification_is_malformed(change: Callable[[dict[str, Any]], object]) -> None:
    event = sample_event("s3_object_created_mime.json")
    change(event)

    with pytest.raises(MalformedPayload):
        parse_s3_notification(event)


# ---- SES receiving notifications -------------------------------------------------------------------------------


def test_the_ses_receiving_sample_names_the_stored_object() -> None:
    assert parse_ses_receipt(sample_event("receiving_ses_s3_action.json")) == [("my-S3-bucket", "\\email")]


def test_the_ses_receiving_notification_inside_sns_and_inside_lambdas_sns_record() -> None:
    notification = sample_event("receiving_ses_s3_action.json")
    sns_message = {"Type": "Notification", "MessageId": "m-1", "Message": json.dumps(notification)}
    lambda_record = {"EventSource": "aws:sns", "Sns": sns_message}

    assert parse_ses_receipt(sns_message) == [("my-S3-bucket", "\\email")]
    assert parse_ses_receipt(lambda_record) == [("my-S3-bucket", "\\email")]


def test_an_sns_action_stores_nothing() -> None:
    notification = sample_event("receiving_ses_s3_action.json")
    notification["receipt"]["action"] = {"type": "SNS", "topicArn": "arn:aws:sns:us-east-1:012345678912:example-topic"}
    notification["content"] = "From: sender@example.com\r\n\r\nExample content\r\n"

    assert parse_ses_receipt(notification) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda n: n.update(notificationType="Bounce"),
        lambda n: n["receipt"].pop("action"),
        lambda n: n["receipt"]["action"].pop("objectKey"),
        lambda n: n["receipt"]["action"].update(bucketName=""),
    ],
    ids=["not-received", "no-action", "no-key", "empty-bucket"],
)
def test_a_broken_ses_receiving_notification_is_malformed(change: Callable[[dict[str, Any]], object]) -> None:
    notification = sample_event("receiving_ses_s3_action.json")
    change(notification)

    with pytest.raises(MalformedPayload):
        parse_ses_receipt(notification)


def test_an_sns_message_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="not JSON"):
        parse_ses_receipt({"Type": "Notification", "Message": "{not json"})


# ---- S3 Object Created on EventBridge (the captured-SMTP bucket) -------------------------------------------------


def test_the_documented_object_created_event_names_its_object() -> None:
    from functions.messages.logic.providers.mime import parse_s3_object_created

    assert parse_s3_object_created(sample_event("eventbridge_s3_object_created.json")) == [
        ("amzn-s3-demo-bucket1", "example-key")
    ]


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.update(source="aws.ses"),
        lambda e: e.update({"detail-type": "Object Deleted"}),
        lambda e: e["detail"]["object"].pop("key"),
        lambda e: e["detail"].pop("bucket"),
        lambda e: e.update(detail="not an object"),
    ],
    ids=["not-s3", "deleted", "no-key", "no-bucket", "detail-not-object"],
)
def test_a_broken_object_created_event_is_malformed(change: Callable[[dict[str, Any]], object]) -> None:
    from functions.messages.logic.providers.mime import parse_s3_object_created

    event = sample_event("eventbridge_s3_object_created.json")
    change(event)

    with pytest.raises(MalformedPayload):
        parse_s3_object_created(event)
