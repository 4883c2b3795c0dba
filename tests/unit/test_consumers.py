"""shared.consumers: an SQS batch of EventBridge events becomes typed events handed to the domain with a system
actor; what fails validation or raises is reported for retry, the rest is settled."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from shared.auth import Actor, ActorKind
from shared.consumers import EventConsumer
from shared.errors import ConfigurationError
from shared.events import DomainEvent, Fingerprint, Identifier

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "sqs_eventbridge_message_recorded.json"
GOOD, BAD = "059f36b4-87a3-44ab-83d2-661975830a7d", "2e1424d4-f796-459a-8184-9c92662be6da"


class MessageRecorded(DomainEvent):
    detail_type: ClassVar[str] = "MessageRecorded"
    message_id: Identifier


# The sample's channel is an enum on the messages side; a consumer may read it as an Identifier.
class MessageRecordedView(DomainEvent):
    detail_type: ClassVar[str] = "MessageRecorded"
    message_id: Identifier
    recipient: Fingerprint
    channel: Identifier
    attempt: int


class DeliveryFailed(DomainEvent):
    detail_type: ClassVar[str] = "DeliveryFailed"
    message_id: Identifier


def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


def body_of(record: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(record["body"])
    return body


def with_body(record: dict[str, Any], body: dict[str, Any], message_id: str) -> dict[str, Any]:
    out = copy.deepcopy(record)
    out["body"] = json.dumps(body)
    out["messageId"] = message_id
    return out


class Recorder:
    def __init__(self, fail_on: set[str] | None = None) -> None:
        self.seen: list[tuple[DomainEvent, Actor]] = []
        self.fail_on = fail_on or set()

    def __call__(self, event: Any, actor: Actor) -> None:
        if event.message_id in self.fail_on:
            raise RuntimeError("downstream unavailable")
        self.seen.append((event, actor))


def test_a_valid_record_is_handled_with_a_system_actor_and_a_personal_data_record_is_reported() -> None:
    handled = Recorder()
    consumer = EventConsumer(MessageRecordedView, handled, job="retention.on-message-recorded")

    response = consumer(sample())

    # The second record of the sample carries an email address where a fingerprint belongs.
    assert response == {"batchItemFailures": [{"itemIdentifier": BAD}]}
    [(event, actor)] = handled.seen
    assert isinstance(event, MessageRecordedView)
    assert (event.tenant, event.message_id, event.attempt) == ("acme", "msg-01JD4X8Z", 1)
    assert event.event_id == "0b5f1c1e-3d0c-4c52-9a59-8a1c2f3e4d5a"
    assert event.correlation_id == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert actor == Actor.system("retention.on-message-recorded", "acme")
    assert actor.kind is ActorKind.SYSTEM


def test_a_record_whose_handler_raises_is_reported_and_the_others_settle() -> None:
    event = sample()
    good = event["Records"][0]
    second = body_of(good)
    second["detail"]["data"]["message_id"] = "msg-2"
    third = body_of(good)
    third["detail"]["data"]["message_id"] = "msg-3"
    event["Records"] = [good, with_body(good, second, "id-2"), with_body(good, third, "id-3")]
    handled = Recorder(fail_on={"msg-2"})

    response = EventConsumer(MessageRecordedView, handled, job="j")(event)

    assert response == {"batchItemFailures": [{"itemIdentifier": "id-2"}]}
    assert [e.message_id for e, _ in handled.seen] == ["msg-01JD4X8Z", "msg-3"]  # type: ignore[attr-defined]


def test_a_batch_where_everything_fails_reports_every_record() -> None:
    response = EventConsumer(MessageRecordedView, Recorder(fail_on={"msg-01JD4X8Z"}), job="j")(sample())

    assert response == {"batchItemFailures": [{"itemIdentifier": GOOD}, {"itemIdentifier": BAD}]}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.update({"detail-type": "DeliveryFailed"}),
        lambda b: b["detail"]["metadata"].update({"tenant": "_gateway"}),
        lambda b: b["detail"]["metadata"].update({"version": "2"}),
        lambda b: b["detail"]["data"].pop("message_id"),
        lambda b: b["detail"]["data"].update({"note": "free text"}),
        lambda b: b.pop("detail"),
    ],
    ids=["other-type", "system-tenant", "other-version", "missing-field", "extra-field", "no-detail"],
)
def test_records_that_do_not_validate_are_reported(mutate: Any) -> None:
    event = sample()
    body = body_of(event["Records"][0])
    mutate(body)
    event["Records"] = [with_body(event["Records"][0], body, "poison")]
    handled = Recorder()

    assert EventConsumer(MessageRecordedView, handled, job="j")(event) == {
        "batchItemFailures": [{"itemIdentifier": "poison"}]
    }
    assert handled.seen == []


def test_a_body_that_is_not_json_is_reported() -> None:
    event = sample()
    event["Records"] = [dict(event["Records"][0], body="not json", messageId="garbage")]

    assert EventConsumer(MessageRecordedView, Recorder(), job="j")(event) == {
        "batchItemFailures": [{"itemIdentifier": "garbage"}]
    }


def test_one_consumer_reads_several_event_types_by_detail_type() -> None:
    event = sample()
    failed = body_of(event["Records"][0])
    failed["detail-type"] = "DeliveryFailed"
    failed["detail"]["data"] = {"message_id": "msg-9"}
    event["Records"] = [event["Records"][0], with_body(event["Records"][0], failed, "id-9")]
    handled = Recorder()

    response = EventConsumer([MessageRecordedView, DeliveryFailed], handled, job="j")(event)

    assert response == {"batchItemFailures": []}
    assert [type(e).__name__ for e, _ in handled.seen] == ["MessageRecordedView", "DeliveryFailed"]


def test_events_from_another_source_are_refused_when_sources_are_named() -> None:
    event = sample()
    event["Records"] = event["Records"][:1]
    handled = Recorder()

    assert EventConsumer(MessageRecordedView, handled, job="j", sources={"ats.other"})(event) == {
        "batchItemFailures": [{"itemIdentifier": GOOD}]
    }
    assert EventConsumer(MessageRecordedView, handled, job="j", sources={"ats.messages"})(event) == {
        "batchItemFailures": []
    }


def test_failures_are_logged_without_the_record_body(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        EventConsumer(MessageRecordedView, Recorder(), job="j")(sample())

    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [(getattr(r, "message_id", None), getattr(r, "error_type", None)) for r in warnings] == [
        (BAD, "ValidationError")
    ]
    everything = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "jane.doe@globex.example" not in everything


def test_the_actor_factory_can_be_replaced() -> None:
    handled = Recorder()
    event = sample()
    event["Records"] = event["Records"][:1]

    EventConsumer(MessageRecordedView, handled, job="j", actor=lambda job, tenant: Actor.system(f"{job}-x", tenant))(
        event
    )

    assert handled.seen[0][1].id == "j-x"


def test_a_consumer_needs_concrete_distinct_event_classes() -> None:
    class _Abstract(DomainEvent):
        message_id: Identifier

    with pytest.raises(ConfigurationError, match="detail_type"):
        EventConsumer(_Abstract, Recorder(), job="j")
    with pytest.raises(ConfigurationError, match="share"):
        EventConsumer([MessageRecordedView, MessageRecorded], Recorder(), job="j")
