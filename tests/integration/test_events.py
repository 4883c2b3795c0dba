"""shared.events.EventBridgePublisher against a moto bus, observed through a rule that targets an SQS queue."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import boto3
import pytest

from shared.auth import Actor
from shared.consumers import EventConsumer
from shared.events import DomainEvent, Fingerprint, Identifier, PublishFailure
from shared.publisher import EventBridgePublisher
from tests.integration.conftest import EVENT_BUS, REGION

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

SOURCE = "ats.messages"
FP = "h1:" + "0f" * 32


class MessageRecorded(DomainEvent):
    detail_type: ClassVar[str] = "MessageRecorded"
    message_id: Identifier
    recipient: Fingerprint
    n: int


T0 = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


@pytest.fixture
def events_client(aws: None) -> EventBridgeClient:
    client: EventBridgeClient = boto3.client("events", region_name=REGION)
    client.create_event_bus(Name=EVENT_BUS)
    return client


@pytest.fixture
def sqs(aws: None) -> SQSClient:
    client: SQSClient = boto3.client("sqs", region_name=REGION)
    return client


@pytest.fixture
def queue_url(events_client: EventBridgeClient, sqs: SQSClient) -> str:
    """A queue that receives every event of SOURCE on the bus."""
    url = sqs.create_queue(QueueName="it-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(
        Name="it-all", EventBusName=EVENT_BUS, EventPattern=json.dumps({"source": [SOURCE]}), State="ENABLED"
    )
    events_client.put_targets(Rule="it-all", EventBusName=EVENT_BUS, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def _drain(sqs: SQSClient, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return out
        for message in batch:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _spy_put_events(client: EventBridgeClient) -> list[list[dict[str, Any]]]:
    """Record the Entries of every PutEvents call the client makes."""
    calls: list[list[dict[str, Any]]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(list(params["Entries"]))

    client.meta.events.register("provide-client-params.events.PutEvents", record)
    return calls


def _events(count: int) -> list[DomainEvent]:
    return [
        MessageRecorded(
            tenant="acme" if n % 2 else "globex",
            message_id=f"m-{n}",
            recipient=FP,
            n=n,
            event_id=f"evt-{n:03d}",
            occurred_at=T0 + timedelta(seconds=n),
            correlation_id=f"req-{n}",
        )
        for n in range(count)
    ]


def test_23_events_are_sent_in_3_put_events_calls_and_delivered(
    events_client: EventBridgeClient, sqs: SQSClient, queue_url: str
) -> None:
    calls = _spy_put_events(events_client)
    publisher = EventBridgePublisher(EVENT_BUS, SOURCE, client=events_client)

    publisher.publish(_events(23))

    assert [len(entries) for entries in calls] == [10, 10, 3]
    first = calls[0][0]
    assert first["EventBusName"] == EVENT_BUS
    assert first["Source"] == SOURCE
    assert first["DetailType"] == "MessageRecorded"
    assert first["Time"] == T0
    assert "TraceHeader" not in first
    assert json.loads(first["Detail"]) == {
        "metadata": {
            "event_id": "evt-000",
            "tenant": "globex",
            "occurred_at": "2025-03-01T12:00:00.250Z",
            "correlation_id": "req-0",
            "version": "1",
        },
        "data": {"message_id": "m-0", "recipient": FP, "n": 0},
    }

    delivered = _drain(sqs, queue_url)
    assert len(delivered) == 23
    assert {e["source"] for e in delivered} == {SOURCE}
    assert {e["detail-type"] for e in delivered} == {"MessageRecorded"}
    by_id = {e["detail"]["metadata"]["event_id"]: e["detail"] for e in delivered}
    assert sorted(by_id) == [f"evt-{n:03d}" for n in range(23)]
    assert by_id["evt-022"]["data"] == {"message_id": "m-22", "recipient": FP, "n": 22}
    assert by_id["evt-007"]["metadata"]["tenant"] == "acme"


def test_default_client_comes_from_the_shared_factory(
    events_client: EventBridgeClient, sqs: SQSClient, queue_url: str
) -> None:
    # No client injected: the adapter uses shared.aws.client("events") from the environment (region, fake creds).
    EventBridgePublisher(EVENT_BUS, SOURCE).publish(_events(1))
    delivered = _drain(sqs, queue_url)
    assert [e["detail"]["metadata"]["event_id"] for e in delivered] == ["evt-000"]


def test_events_of_other_sources_are_not_routed(
    events_client: EventBridgeClient, sqs: SQSClient, queue_url: str
) -> None:
    EventBridgePublisher(EVENT_BUS, "ats.other", client=events_client).publish(_events(2))
    assert _drain(sqs, queue_url) == []


def test_the_lambda_trace_header_is_forwarded(
    events_client: EventBridgeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", trace)
    calls = _spy_put_events(events_client)

    EventBridgePublisher(EVENT_BUS, SOURCE, client=events_client).publish(_events(2))

    assert [entry["TraceHeader"] for entry in calls[0]] == [trace, trace]


def test_no_events_means_no_call(events_client: EventBridgeClient) -> None:
    calls = _spy_put_events(events_client)
    EventBridgePublisher(EVENT_BUS, SOURCE, client=events_client).publish([])
    assert calls == []


def test_only_rejected_entries_are_retried_and_then_delivered(
    events_client: EventBridgeClient, sqs: SQSClient, queue_url: str
) -> None:
    calls = _spy_put_events(events_client)
    rejected_once = {"done": False}

    def reject_second_once(parsed: dict[str, Any], **_: Any) -> None:
        if not rejected_once["done"]:
            rejected_once["done"] = True
            parsed["FailedEntryCount"] = 1
            parsed["Entries"][1] = {"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}

    events_client.meta.events.register("after-call.events.PutEvents", lambda **kw: reject_second_once(kw["parsed"]))

    EventBridgePublisher(EVENT_BUS, SOURCE, client=events_client, sleep=lambda _: None).publish(_events(3))

    assert [[json.loads(e["Detail"])["metadata"]["event_id"] for e in call] for call in calls] == [
        ["evt-000", "evt-001", "evt-002"],
        ["evt-001"],
    ]
    # evt-001 was "rejected" only in the response moto returned; moto did deliver it, so the retry delivers it
    # a second time, as EventBridge may too: consumers deduplicate on event_id.
    ids = sorted(e["detail"]["metadata"]["event_id"] for e in _drain(sqs, queue_url))
    assert ids == ["evt-000", "evt-001", "evt-001", "evt-002"]


def test_entries_still_rejected_after_every_attempt_raise_naming_them(events_client: EventBridgeClient) -> None:
    calls = _spy_put_events(events_client)

    def reject_second(parsed: dict[str, Any], **_: Any) -> None:
        entries = parsed["Entries"]
        if len(entries) > 1:
            entries[1] = {"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}
        else:
            entries[0] = {"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}
        parsed["FailedEntryCount"] = 1

    events_client.meta.events.register("after-call.events.PutEvents", lambda **kw: reject_second(kw["parsed"]))

    with pytest.raises(PublishFailure) as raised:
        EventBridgePublisher(EVENT_BUS, SOURCE, client=events_client, sleep=lambda _: None).publish(_events(3))

    assert raised.value.message == "EventBridge rejected 1 event(s): MessageRecorded/evt-001: InternalFailure"
    assert [len(c) for c in calls] == [3, 1, 1, 1]


def _lambda_sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """What Lambda's SQS event source mapping hands the function for these received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def test_published_events_reach_a_consumer_through_the_queue_typed(
    events_client: EventBridgeClient, sqs: SQSClient, queue_url: str
) -> None:
    EventBridgePublisher(EVENT_BUS, SOURCE, client=events_client).publish(_events(3))
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    seen: list[tuple[MessageRecorded, Actor]] = []

    def handle(event: MessageRecorded, actor: Actor) -> None:
        if event.n == 1:
            raise RuntimeError("not yet")
        seen.append((event, actor))

    response = EventConsumer(MessageRecorded, handle, job="it.consumer", sources={SOURCE})(
        _lambda_sqs_event(messages, arn)
    )

    failed_id = next(m["MessageId"] for m in messages if json.loads(m["Body"])["detail"]["data"]["n"] == 1)
    assert response == {"batchItemFailures": [{"itemIdentifier": failed_id}]}
    assert sorted((e.n, e.tenant, a.id, a.tenant) for e, a in seen) == [
        (0, "globex", "it.consumer", "globex"),
        (2, "globex", "it.consumer", "globex"),
    ]
    assert all(e.occurred_at.tzinfo is not None and e.recipient == FP for e, _ in seen)
