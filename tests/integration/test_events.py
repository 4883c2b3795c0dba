"""shared.events.EventBridgePublisher against a moto bus, observed through a rule that targets an SQS queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from shared.errors import DependencyFailure
from shared.events import DomainEvent, EventBridgePublisher
from tests.integration.conftest import EVENT_BUS, REGION

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

SOURCE = "ats.messages"
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
        DomainEvent(
            detail_type="MessageRecorded",
            tenant="acme" if n % 2 else "globex",
            data={"message_id": f"m-{n}", "n": n},
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
        "data": {"message_id": "m-0", "n": 0},
    }

    delivered = _drain(sqs, queue_url)
    assert len(delivered) == 23
    assert {e["source"] for e in delivered} == {SOURCE}
    assert {e["detail-type"] for e in delivered} == {"MessageRecorded"}
    by_id = {e["detail"]["metadata"]["event_id"]: e["detail"] for e in delivered}
    assert sorted(by_id) == [f"evt-{n:03d}" for n in range(23)]
    assert by_id["evt-022"]["data"] == {"message_id": "m-22", "n": 22}
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


def test_rejected_entries_raise_a_dependency_failure_naming_them(events_client: EventBridgeClient) -> None:
    # Entries after the failing chunk are never sent; the failure names the rejected events.
    calls = _spy_put_events(events_client)

    def reject_second(parsed: dict[str, Any], **_: Any) -> None:
        parsed["FailedEntryCount"] = 1
        parsed["Entries"][1] = {"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}

    events_client.meta.events.register("after-call.events.PutEvents", lambda **kw: reject_second(kw["parsed"]))

    with pytest.raises(DependencyFailure) as raised:
        EventBridgePublisher(EVENT_BUS, SOURCE, client=events_client).publish(_events(15))

    assert raised.value.message == "EventBridge rejected 1 event(s): MessageRecorded/evt-001: InternalFailure"
    assert len(calls) == 1
