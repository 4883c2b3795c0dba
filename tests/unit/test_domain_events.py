"""shared.events: typed domain events (no personal data can be declared or published), their detail on the
bus, and the EventBridge adapter that retries only the rejected entries (with an in-memory client)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from shared import clock
from shared.errors import DependencyFailure
from shared.events import (
    DomainEvent,
    EventSchemaError,
    Fingerprint,
    Identifier,
    PublishFailure,
)
from shared.publisher import EventBridgePublisher

AT = datetime(2025, 11, 20, 9, 15, 30, 123456, tzinfo=UTC)
FP = "h1:" + "ab" * 32


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class MessageRecorded(DomainEvent):
    detail_type: ClassVar[str] = "MessageRecorded"

    message_id: Identifier
    recipient: Fingerprint
    channel: Channel
    attempt: int = 1
    delivered: bool = False
    delivered_at: datetime | None = None
    related: list[Identifier] = []


class FakeEventBridge:
    """Records every put_events call; `reject[call]` maps an entry index to the error code it gets."""

    def __init__(self, reject: dict[int, dict[int, str]] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.reject = reject or {}

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        call = len(self.calls)
        self.calls.append(Entries)
        rejected = self.reject.get(call, {})
        results: list[dict[str, Any]] = [
            {"ErrorCode": rejected[i], "ErrorMessage": "no"} if i in rejected else {"EventId": f"id-{call}-{i}"}
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": len(rejected), "Entries": results}

    def sent_ids(self, call: int) -> list[str]:
        return [json.loads(e["Detail"])["metadata"]["event_id"] for e in self.calls[call]]


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.freeze(AT)
    yield
    clock.freeze(None)


def event(n: int = 0, **overrides: Any) -> MessageRecorded:
    fields: dict[str, Any] = {"tenant": "acme", "message_id": f"m-{n}", "recipient": FP, "channel": "email"}
    fields.update(overrides)
    return MessageRecorded(**fields)


def publisher(client: FakeEventBridge, **kwargs: Any) -> tuple[EventBridgePublisher, list[float]]:
    sleeps: list[float] = []
    pub = EventBridgePublisher("b", "ats.messages", client=client, sleep=sleeps.append, **kwargs)  # type: ignore[arg-type]
    return pub, sleeps


# ---- the model --------------------------------------------------------------------------------------------


def test_defaults() -> None:
    item = event()

    assert item.occurred_at == AT
    assert item.version == "1"
    assert item.correlation_id is None
    assert len(item.event_id) == 36 and item.event_id != event().event_id
    assert MessageRecorded.detail_type == "MessageRecorded"


def test_detail_is_metadata_and_typed_data() -> None:
    item = event(event_id="e-1", correlation_id="req-1", delivered_at=AT, related=["a-1", "a-2"])

    assert json.loads(item.detail()) == {
        "metadata": {
            "event_id": "e-1",
            "tenant": "acme",
            "occurred_at": "2025-11-20T09:15:30.123Z",
            "correlation_id": "req-1",
            "version": "1",
        },
        "data": {
            "message_id": "m-0",
            "recipient": FP,
            "channel": "email",
            "attempt": 1,
            "delivered": False,
            "delivered_at": "2025-11-20T09:15:30.123Z",
            "related": ["a-1", "a-2"],
        },
    }
    assert ", " not in item.detail() and ": " not in item.detail()


def test_the_detail_reads_back_into_its_class() -> None:
    item = event(event_id="e-1", correlation_id="req-1", channel="sms", attempt=3)

    back = MessageRecorded.model_validate(json.loads(item.detail()))

    assert back == item.model_copy(update={"occurred_at": datetime(2025, 11, 20, 9, 15, 30, 123000, tzinfo=UTC)})
    assert back.channel is Channel.SMS


def test_a_detail_of_another_version_is_refused() -> None:
    detail = json.loads(event().detail())
    detail["metadata"]["version"] = "2"

    with pytest.raises(ValidationError):
        MessageRecorded.model_validate(detail)


def test_events_are_frozen_and_closed() -> None:
    with pytest.raises(ValidationError):
        event().tenant = "globex"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        event(email="jane@acme.example")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_id", "jane@acme.example"),
        ("message_id", "Jane Doe"),
        ("recipient", "jane@acme.example"),
        ("recipient", "h1:abc"),
    ],
)
def test_identifier_and_fingerprint_values_are_checked(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        event(**{field: value})  # type: ignore[arg-type]


def test_validation_errors_do_not_echo_the_input() -> None:
    with pytest.raises(ValidationError) as raised:
        event(message_id="jane.doe@acme.example")
    assert "jane.doe@acme.example" not in str(raised.value)


# ---- personal data cannot be declared ---------------------------------------------------------------------


def test_a_plain_str_field_called_email_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(EventSchemaError, match="CandidateApplied.email"):

        class CandidateApplied(DomainEvent):
            detail_type: ClassVar[str] = "CandidateApplied"
            email: str


@pytest.mark.parametrize(
    "annotation",
    [str, "str | None", "dict[str, Any]", "Any", "list[str]", "float", "bytes", "tuple[str, ...]"],
)
def test_types_that_can_carry_free_text_are_refused(annotation: Any) -> None:
    with pytest.raises(EventSchemaError, match="may only be"):
        type(
            "SomethingHappened",
            (DomainEvent,),
            {
                "__annotations__": {"note": annotation, "detail_type": "ClassVar[str]"},
                "detail_type": "SomethingHappened",
                "__module__": __name__,
            },
        )


@pytest.mark.parametrize("name", ["email", "candidate_email", "phone", "first_name", "address", "body"])
def test_a_field_named_after_personal_data_must_be_a_fingerprint(name: str) -> None:
    with pytest.raises(EventSchemaError, match="must be a Fingerprint"):
        type(
            "SomethingHappened",
            (DomainEvent,),
            {
                "__annotations__": {name: "Identifier", "detail_type": "ClassVar[str]"},
                "detail_type": "SomethingHappened",
                "__module__": __name__,
            },
        )

    class Fine(DomainEvent):
        detail_type: ClassVar[str] = "Fine"
        candidate_email: Fingerprint
        email: Fingerprint | None = None

    assert Fine(tenant="acme", candidate_email=FP).email is None


def test_metadata_fields_cannot_be_redefined() -> None:
    with pytest.raises(EventSchemaError, match="metadata"):

        class Sneaky(DomainEvent):
            detail_type: ClassVar[str] = "Sneaky"
            tenant: Identifier


@pytest.mark.parametrize("detail_type", ["messageRecorded", "Message-Recorded", "Message Recorded", "", "M1"])
def test_detail_type_must_be_a_pascal_case_name(detail_type: str) -> None:
    with pytest.raises(EventSchemaError, match="detail_type"):
        type(
            "Odd",
            (DomainEvent,),
            {"__annotations__": {"detail_type": "ClassVar[str]"}, "detail_type": detail_type, "__module__": __name__},
        )


# ---- publishing refuses personal data ---------------------------------------------------------------------


def test_publishing_an_event_whose_values_bypassed_validation_is_refused() -> None:
    client = FakeEventBridge()
    forged = MessageRecorded.model_construct(
        tenant="acme",
        event_id="e-1",
        occurred_at=AT,
        correlation_id=None,
        message_id="jane.doe@acme.example",
        recipient="Jane Doe",
        channel=Channel.EMAIL,
    )

    with pytest.raises(ValidationError):
        publisher(client)[0].publish([event(1), forged])
    assert client.calls == []  # nothing of the batch was sent


def test_publishing_the_untyped_base_or_a_class_without_detail_type_is_refused() -> None:
    class _Abstract(DomainEvent):
        message_id: Identifier

    client = FakeEventBridge()
    with pytest.raises(EventSchemaError, match="detail_type"):
        publisher(client)[0].publish([_Abstract(tenant="acme", message_id="m-1")])
    with pytest.raises(EventSchemaError):
        publisher(client)[0].publish([DomainEvent(tenant="acme")])
    assert client.calls == []


# ---- the EventBridge adapter ------------------------------------------------------------------------------


def test_entries_carry_bus_source_type_detail_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    client = FakeEventBridge()
    item = event()

    EventBridgePublisher("ats-bus", "ats.messages", client=client).publish([item])  # type: ignore[arg-type]

    assert client.calls == [
        [
            {
                "EventBusName": "ats-bus",
                "Source": "ats.messages",
                "DetailType": "MessageRecorded",
                "Detail": item.detail(),
                "Time": AT,
            }
        ]
    ]


def test_the_trace_header_is_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-691ee2d2-4c6b1f0e2a9d3c8b7e6f5a41;Sampled=1")
    client = FakeEventBridge()

    publisher(client)[0].publish([event()])

    assert client.calls[0][0]["TraceHeader"] == "Root=1-691ee2d2-4c6b1f0e2a9d3c8b7e6f5a41;Sampled=1"


@pytest.mark.parametrize(("count", "sizes"), [(0, []), (1, [1]), (10, [10]), (11, [10, 1]), (25, [10, 10, 5])])
def test_events_are_sent_in_batches_of_ten(count: int, sizes: list[int]) -> None:
    client = FakeEventBridge()

    publisher(client)[0].publish([event(n) for n in range(count)])

    assert [len(call) for call in client.calls] == sizes
    sent = [json.loads(e["Detail"])["data"]["message_id"] for call in client.calls for e in call]
    assert sent == [f"m-{n}" for n in range(count)]


def test_only_the_rejected_entries_are_sent_again() -> None:
    client = FakeEventBridge(reject={0: {1: "ThrottlingException", 3: "InternalFailure"}})
    items = [event(n, event_id=f"e-{n}") for n in range(5)]

    pub, sleeps = publisher(client)
    pub.publish(items)

    assert client.sent_ids(0) == ["e-0", "e-1", "e-2", "e-3", "e-4"]
    assert client.sent_ids(1) == ["e-1", "e-3"]
    assert len(client.calls) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.05


def test_retries_back_off_with_jitter_and_stop_after_max_attempts() -> None:
    always = {1: "InternalFailure"}
    client = FakeEventBridge(
        reject={0: always, 1: {0: "InternalFailure"}, 2: {0: "InternalFailure"}, 3: {0: "InternalFailure"}}
    )
    items = [event(n, event_id=f"e-{n}") for n in range(3)]

    pub, sleeps = publisher(client, max_attempts=4, base_delay=0.1, max_delay=0.25)
    with pytest.raises(PublishFailure) as raised:
        pub.publish(items)

    assert [client.sent_ids(c) for c in range(len(client.calls))] == [["e-0", "e-1", "e-2"], ["e-1"], ["e-1"], ["e-1"]]
    assert len(sleeps) == 3
    assert all(0 <= s <= c for s, c in zip(sleeps, [0.1, 0.2, 0.25], strict=True))
    assert isinstance(raised.value, DependencyFailure) and raised.value.status == 503
    assert raised.value.message == "EventBridge rejected 1 event(s): MessageRecorded/e-1: InternalFailure"
    assert [e.event_id for e in raised.value.events] == ["e-1"]


def test_permanent_errors_are_not_retried() -> None:
    client = FakeEventBridge(reject={0: {0: "MalformedDetail"}})

    pub, sleeps = publisher(client)
    with pytest.raises(PublishFailure, match="e-0: MalformedDetail"):
        pub.publish([event(0, event_id="e-0"), event(1, event_id="e-1")])

    assert len(client.calls) == 1 and sleeps == []


def test_a_rejection_in_one_batch_does_not_stop_the_next_batches() -> None:
    # Batch 2 (call 1) keeps rejecting e-13 through every retry; batch 3 is still sent.
    reject = {
        1: {3: "InternalFailure"},
        2: {0: "InternalFailure"},
        3: {0: "InternalFailure"},
        4: {0: "InternalFailure"},
    }
    client = FakeEventBridge(reject=reject)
    items = [event(n, event_id=f"e-{n}") for n in range(25)]

    pub, _ = publisher(client)
    with pytest.raises(PublishFailure) as raised:
        pub.publish(items)

    assert [len(c) for c in client.calls] == [10, 10, 1, 1, 1, 5]
    assert client.sent_ids(5) == [f"e-{n}" for n in range(20, 25)]
    assert [e.event_id for e in raised.value.events] == ["e-13"]
    assert "e-10" not in raised.value.message
