"""Amazon SES events as provider events: every documented record (event publishing and identity notifications),
the SNS and EventBridge envelopes, one event per recipient, and the refusals."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.messages.logic.providers.ses import parse_eventbridge, parse_ses, parse_sns_body
from functions.messages.models.message import (
    Channel,
    Direction,
    MalformedPayload,
    Party,
    Provider,
    ProviderEvent,
    Status,
)
from tests.conftest import EVENTS, sample_event

MID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
SUBJECT = "Message sent from Amazon SES"
SENDER = Party("sender@example.com")
RECIPIENT = Party("recipient@example.com")
CUSTOM_TAGS = {"myCustomTag1": "myCustomTagValue1", "myCustomTag2": "myCustomTagValue2"}
OPEN_CLICK_TAGS = {"myCustomTag1": "myCustomValue1", "myCustomTag2": "myCustomValue2"}
# The digest of recipient@example.com that names the recipient in per-recipient event ids.
RECIPIENT_DIGEST = "5efba3df1c3be499"
EVENT_ID = re.compile(r"^[A-Za-z0-9_:.@+=/-]{1,400}$")
RECORDS = sorted(p.name for p in EVENTS.glob("ses_*.json"))


def at(year: int, month: int, day: int, hour: int, minute: int, second: int, millis: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=UTC)


def outbound(**fields: Any) -> ProviderEvent:
    """An SES event with the fields every documented event-publishing record shares."""
    base: dict[str, Any] = {
        "provider": Provider.SES,
        "message_key": MID,
        "channel": Channel.EMAIL,
        "direction": Direction.OUTBOUND,
        "rfc_message_id": MID,
        "sender": SENDER,
        "recipients": (RECIPIENT,),
        "subject": SUBJECT,
    }
    return ProviderEvent(**{**base, **fields})


# --- the documented records, field by field ---------------------------------------------------------------------


def test_send() -> None:
    assert parse_ses(sample_event("ses_send.json")) == [
        outbound(
            event_id=f"{MID}:Send:2016-10-14T05:02:16.645Z",
            status=Status.SENT,
            occurred_at=at(2016, 10, 14, 5, 2, 16, 645),
            provider_event="Send",
            tags=CUSTOM_TAGS,
        )
    ]


def test_delivery_is_timed_by_the_delivery_and_keeps_the_smtp_code_only() -> None:
    assert parse_ses(sample_event("ses_delivery.json")) == [
        outbound(
            event_id=f"{MID}:Delivery:2016-10-19T23:21:04.133Z:{RECIPIENT_DIGEST}",
            status=Status.DELIVERED,
            occurred_at=at(2016, 10, 19, 23, 21, 4, 133),
            provider_event="Delivery",
            detail="smtp=250",
            tags=CUSTOM_TAGS,
        )
    ]


def test_a_permanent_bounce_is_a_permanent_failure_with_its_codes() -> None:
    assert parse_ses(sample_event("ses_bounce.json")) == [
        outbound(
            event_id=f"{MID}:Bounce:2017-08-05T00:41:02.669Z:{RECIPIENT_DIGEST}",
            status=Status.BOUNCED,
            occurred_at=at(2017, 8, 5, 0, 41, 2, 669),
            provider_event="Bounce",
            sender=Party("sender@example.com", "Sender Name"),
            permanent=True,
            detail="bounce=Permanent/General;status=5.1.1;smtp=550",
        )
    ]


def test_complaint() -> None:
    assert parse_ses(sample_event("ses_complaint.json")) == [
        outbound(
            event_id=f"{MID}:Complaint:2017-08-05T00:41:02.669Z:{RECIPIENT_DIGEST}",
            status=Status.COMPLAINED,
            occurred_at=at(2017, 8, 5, 0, 41, 2, 669),
            provider_event="Complaint",
            sender=Party("sender@example.com", "Sender Name"),
            detail="complaint=abuse",
        )
    ]


def test_a_reject_is_a_failure_ses_will_not_retry() -> None:
    assert parse_ses(sample_event("ses_reject.json")) == [
        outbound(
            event_id=f"{MID}:Reject:2016-10-14T17:38:15.211Z",
            status=Status.FAILED,
            occurred_at=at(2016, 10, 14, 17, 38, 15, 211),
            provider_event="Reject",
            recipients=(Party("sender@example.com"),),  # AWS's example really rejects a mail to its sender
            permanent=True,
            detail="reject=Bad_content",
            tags=CUSTOM_TAGS,
        )
    ]


def test_open() -> None:
    assert parse_ses(sample_event("ses_open.json")) == [
        outbound(
            event_id=f"{MID}:Open:2017-08-09T22:00:19.652Z",
            status=Status.OPENED,
            occurred_at=at(2017, 8, 9, 22, 0, 19, 652),
            provider_event="Open",
            tags=OPEN_CLICK_TAGS,
        )
    ]


def test_click_leaves_the_link_out() -> None:
    [event] = parse_ses(sample_event("ses_click.json"))

    assert event == outbound(
        event_id=f"{MID}:Click:2017-08-09T23:51:25.570Z",
        status=Status.CLICKED,
        occurred_at=at(2017, 8, 9, 23, 51, 25, 570),
        provider_event="Click",
        tags=OPEN_CLICK_TAGS,
    )
    assert "docs.aws.amazon.com" not in repr(event)


def test_a_rendering_failure_names_the_template_not_the_error_text() -> None:
    assert parse_ses(sample_event("ses_rendering_failure.json")) == [
        outbound(
            event_id=f"{MID}:RenderingFailure:2018-01-22T18:43:06.197Z",
            status=Status.FAILED,
            occurred_at=at(2018, 1, 22, 18, 43, 6, 197),
            provider_event="Rendering Failure",
            rfc_message_id=None,
            sender=SENDER,
            subject=None,
            permanent=True,
            detail="rendering_failure;template=MyTemplate",
        )
    ]


def test_a_delivery_delay_is_a_retry_not_a_failure() -> None:
    assert parse_ses(sample_event("ses_delivery_delay.json")) == [
        outbound(
            event_id=f"{MID}:DeliveryDelay:2020-06-16T00:25:40.095Z:{RECIPIENT_DIGEST}",
            status=Status.DELAYED,
            occurred_at=at(2020, 6, 16, 0, 25, 40, 95),
            provider_event="DeliveryDelay",
            rfc_message_id=None,
            subject=None,
            detail="delay=TransientCommunicationFailure;status=4.4.1;smtp=421",
        )
    ]


def test_a_subscription_that_unsubscribes_from_everything_is_an_unsubscribe() -> None:
    mid = "EXAMPLEe4bccb684-777bc8de-afa7-4970-92b0-f515137b1497-000000"
    assert parse_ses(sample_event("ses_subscription.json")) == [
        outbound(
            event_id=f"{mid}:Subscription:2022-01-12T01:00:17.910Z",
            message_key=mid,
            rfc_message_id=mid,
            status=Status.UNSUBSCRIBED,
            occurred_at=at(2022, 1, 12, 1, 0, 17, 910),
            provider_event="Subscription",
            detail="source=UnsubscribeHeader;unsubscribe_all=true",
            tags=OPEN_CLICK_TAGS,
        )
    ]


def test_a_subscription_that_opts_in_only_proves_delivery() -> None:
    record = sample_event("ses_subscription.json")
    new = record["subscription"]["newTopicPreferences"]
    new["unsubscribeAll"] = False
    new["topicSubscriptionStatus"][0]["subscriptionStatus"] = "OptIn"

    [event] = parse_ses(record)

    assert event.status is Status.DELIVERED
    assert event.detail == "source=UnsubscribeHeader;unsubscribe_all=false"


def test_opting_out_of_one_topic_is_an_unsubscribe() -> None:
    record = sample_event("ses_subscription.json")
    record["subscription"]["newTopicPreferences"]["unsubscribeAll"] = False
    record["subscription"]["oldTopicPreferences"]["topicSubscriptionStatus"][0]["subscriptionStatus"] = "OptIn"

    assert parse_ses(record)[0].status is Status.UNSUBSCRIBED


# --- the identity notifications (notificationType) ----------------------------------------------------------------


JOHN = Party("john@example.com", "John Doe")


def test_a_notification_bounce_gives_one_event_per_bounced_recipient() -> None:
    mid = "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000"
    stem = f"{mid}:Bounce:2016-01-27T14:59:38.237Z"
    common: dict[str, Any] = {
        "provider": Provider.SES,
        "message_key": mid,
        "channel": Channel.EMAIL,
        "direction": Direction.OUTBOUND,
        "status": Status.BOUNCED,
        "occurred_at": at(2016, 1, 27, 14, 59, 38, 237),
        "provider_event": "Bounce",
        "rfc_message_id": "custom-message-ID",
        "sender": JOHN,
        "subject": "Hello",
        "permanent": True,
        "detail": "bounce=Permanent/General",
    }

    events = parse_ses(sample_event("ses_notification_bounce.json"))

    assert events == [
        ProviderEvent(
            event_id=f"{stem}:8c87b489ce35cf2e", recipients=(Party("jane@example.com", "Jane Doe"),), **common
        ),
        ProviderEvent(
            event_id=f"{stem}:11dab2f998ab44d0", recipients=(Party("richard@example.com", "Richard Doe"),), **common
        ),
    ]


def test_a_notification_complaint() -> None:
    mid = "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000"
    assert parse_ses(sample_event("ses_notification_complaint.json")) == [
        ProviderEvent(
            provider=Provider.SES,
            event_id=f"{mid}:Complaint:2016-01-27T14:59:38.237Z:11dab2f998ab44d0",
            message_key=mid,
            channel=Channel.EMAIL,
            direction=Direction.OUTBOUND,
            status=Status.COMPLAINED,
            occurred_at=at(2016, 1, 27, 14, 59, 38, 237),
            provider_event="Complaint",
            rfc_message_id="custom-message-ID",
            sender=JOHN,
            recipients=(Party("richard@example.com", "Richard Doe"),),
            subject="Hello",
            detail="complaint=abuse",
        )
    ]


def test_a_notification_delivery() -> None:
    mid = "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000"
    assert parse_ses(sample_event("ses_notification_delivery.json")) == [
        ProviderEvent(
            provider=Provider.SES,
            event_id=f"{mid}:Delivery:2016-01-27T14:59:38.237Z:8c87b489ce35cf2e",
            message_key=mid,
            channel=Channel.EMAIL,
            direction=Direction.OUTBOUND,
            status=Status.DELIVERED,
            occurred_at=at(2016, 1, 27, 14, 59, 38, 237),
            provider_event="Delivery",
            rfc_message_id="custom-message-ID",
            sender=JOHN,
            recipients=(Party("jane@example.com", "Jane Doe"),),
            subject="Hello",
            detail="smtp=250",
        )
    ]


# --- properties of every record --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORDS)
def test_every_sample_gives_valid_ids_and_no_address_in_detail(name: str) -> None:
    events = parse_ses(sample_event(name))

    assert events
    for event in events:
        assert EVENT_ID.match(event.event_id)
        assert "@" not in event.event_id.split(":", 1)[1]  # the recipient is a digest, never the address
        assert event.occurred_at.tzinfo is UTC
        assert event.detail is None or "@" not in event.detail
        assert all(not key.startswith("ses:") for key in event.tags)
    assert len({e.event_id for e in events}) == len(events)


@pytest.mark.parametrize("name", RECORDS)
def test_parsing_is_deterministic(name: str) -> None:
    assert parse_ses(sample_event(name)) == parse_ses(sample_event(name))


def test_one_record_for_two_recipients_or_one_record_each_gives_the_same_events() -> None:
    together = sample_event("ses_notification_bounce.json")
    jane, richard = copy.deepcopy(together), copy.deepcopy(together)
    jane["bounce"]["bouncedRecipients"] = together["bounce"]["bouncedRecipients"][:1]
    richard["bounce"]["bouncedRecipients"] = together["bounce"]["bouncedRecipients"][1:]

    assert parse_ses(together) == parse_ses(jane) + parse_ses(richard)


def test_a_transient_bounce_is_final_for_the_message_and_says_transient() -> None:
    record = sample_event("ses_bounce.json")
    record["bounce"].update(bounceType="Transient", bounceSubType="MailboxFull")
    record["bounce"]["bouncedRecipients"][0].update(status="4.2.2", diagnosticCode="smtp; 452 4.2.2 mailbox full")

    [event] = parse_ses(record)

    assert (event.status, event.permanent) == (Status.BOUNCED, True)
    assert event.detail == "bounce=Transient/MailboxFull;status=4.2.2;smtp=452"


def test_a_diagnostic_quoting_the_address_keeps_only_the_code() -> None:
    record = sample_event("ses_bounce.json")
    record["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "smtp; 550 5.1.1 <recipient@example.com>... User"

    assert parse_ses(record)[0].detail == "bounce=Permanent/General;status=5.1.1;smtp=550"


def test_the_ats_tags_become_candidate_and_requisition() -> None:
    record = sample_event("ses_delivery.json")
    record["mail"]["tags"].update(
        candidate_id=["cand-42"],
        requisition_id=["req-7"],
        tenant=["acme"],
        provider=["sendgrid"],  # would steer the event to another message: never copied
        provider_message_id=["x"],
        note=["not an id!"],
    )

    [event] = parse_ses(record)

    assert (event.candidate_id, event.requisition_id) == ("cand-42", "req-7")
    assert event.tags == {**CUSTOM_TAGS, "tenant": "acme"}


def test_a_malformed_candidate_tag_is_ignored() -> None:
    record = sample_event("ses_delivery.json")
    record["mail"]["tags"]["candidate_id"] = ["<script>"]

    assert parse_ses(record)[0].candidate_id is None


def test_threading_headers_are_read() -> None:
    record = sample_event("ses_send.json")
    record["mail"]["headers"] += [
        {"name": "In-Reply-To", "value": "<cand-reply@mail.example.com>"},
        {"name": "References", "value": "<root@ats.example.com> <cand-reply@mail.example.com>"},
    ]

    [event] = parse_ses(record)

    assert event.in_reply_to == "cand-reply@mail.example.com"
    assert event.references == ("root@ats.example.com", "cand-reply@mail.example.com")


@pytest.mark.parametrize("kind", [{"eventType": "SomethingNew"}, {"notificationType": "Received"}])
def test_records_without_a_message_event_give_none(kind: dict[str, str]) -> None:
    assert parse_ses({**kind, "mail": {"messageId": "abc"}}) == []


# --- the envelopes -----------------------------------------------------------------------------------------------


def test_an_sns_notification_carries_the_record_as_a_string() -> None:
    body = (EVENTS / "sns_ses_delivery.json").read_bytes()

    assert parse_sns_body(body) == parse_ses(sample_event("ses_delivery.json"))


def test_raw_message_delivery_posts_the_record_itself() -> None:
    body = (EVENTS / "ses_delivery.json").read_bytes()

    assert parse_sns_body(body) == parse_ses(sample_event("ses_delivery.json"))


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_the_subscription_handshake_carries_no_event(kind: str) -> None:
    envelope = sample_event("sns_ses_delivery.json")
    envelope.update(Type=kind, Message="You have chosen to subscribe to the topic ...")

    assert parse_sns_body(json.dumps(envelope).encode()) == []


def test_an_eventbridge_event_carries_the_record_as_its_detail() -> None:
    event = sample_event("eventbridge_ses_bounce.json")

    assert event["detail-type"] == "Email Bounced"
    assert parse_eventbridge(event) == parse_ses(sample_event("ses_bounce.json"))


def test_ses_events_on_the_bus_that_name_no_message_give_none() -> None:
    event = sample_event("eventbridge_ses_bounce.json")
    event.update({"detail-type": "Sending Status Disabled", "detail": {"status": "DISABLED"}})

    assert parse_eventbridge(event) == []


# --- refusals ----------------------------------------------------------------------------------------------------


def mutated(name: str, change: Any) -> Any:
    record = sample_event(name)
    change(record)
    return record


@pytest.mark.parametrize(
    "record",
    [
        ["not", "an", "object"],
        {"mail": {}},
        {"eventType": "Send"},
        {"eventType": "Send", "mail": "x"},
        {"eventType": "Bounce", "bounce": [], "mail": {}},
        mutated("ses_send.json", lambda r: r["mail"].pop("messageId")),
        mutated("ses_send.json", lambda r: r["mail"].update(messageId="has spaces and / slashes")),
        mutated("ses_send.json", lambda r: r["mail"].update(timestamp="yesterday")),
        mutated("ses_send.json", lambda r: r["mail"].update(timestamp="2016-10-14T05:02:16")),
        mutated("ses_send.json", lambda r: r["mail"].pop("timestamp")),
        mutated("ses_bounce.json", lambda r: r["bounce"].update(bouncedRecipients=[])),
        mutated("ses_delivery.json", lambda r: r["delivery"].pop("recipients")),
        mutated("ses_complaint.json", lambda r: r["complaint"].update(complainedRecipients=[{"x": 1}])),
    ],
)
def test_a_record_that_is_not_ses_format_is_refused(record: Any) -> None:
    with pytest.raises(MalformedPayload):
        parse_ses(record)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"Type": "Something"}).encode(),
        json.dumps({"Type": "Notification"}).encode(),
        json.dumps({"Type": "Notification", "Message": "not json"}).encode(),
        json.dumps({"Type": "Notification", "Message": "[1]"}).encode(),
    ],
)
def test_an_sns_body_that_is_not_a_notification_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_sns_body(body)


@pytest.mark.parametrize(
    "event",
    [
        {"source": "aws.events", "detail": {}},
        {"source": "aws.ses"},
        {"source": "aws.ses", "detail": "x"},
    ],
)
def test_an_eventbridge_event_not_from_ses_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(MalformedPayload):
        parse_eventbridge(event)
