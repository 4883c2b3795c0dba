"""shared.events: DomainEvent serialisation and the EventBridge adapter (with an in-memory client)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared import clock
from shared.errors import DependencyFailure
from shared.events import DomainEvent, EventBridgePublisher

AT = datetime(2025, 11, 20, 9, 15, 30, 123456, tzinfo=UTC)


class FakeEventBridge:
    """Records every put_events call; rejects the entries whose index is in `reject` (per call)."""

    def __init__(self, reject: dict[int, set[int]] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.reject = reject or {}

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        call = len(self.calls)
        self.calls.append(Entries)
        rejected = self.reject.get(call, set())
        results: list[dict[str, Any]] = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"} if i in rejected else {"EventId": f"id-{i}"}
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": len(rejected), "Entries": results}


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.freeze(AT)
    yield
    clock.freeze(None)


def event(n: int = 0, **overrides: Any) -> DomainEvent:
    fields: dict[str, Any] = {"detail_type": "MessageRecorded", "tenant": "acme", "data": {"n": n}}
    fields.update(overrides)
    return DomainEvent(**fields)


def test_defaults() -> None:
    item = event()

    assert item.occurred_at == AT
    assert item.version == "1"
    assert item.correlation_id is None
    assert len(item.event_id) == 36
    assert item.event_id != event().event_id


def test_detail_is_metadata_and_data() -> None:
    item = event(event_id="e-1", correlation_id="req-1", data={"message_id": "m-1", "count": 2})

    assert json.loads(item.detail()) == {
        "metadata": {
            "event_id": "e-1",
            "tenant": "acme",
            "occurred_at": "2025-11-20T09:15:30.123Z",
            "correlation_id": "req-1",
            "version": "1",
        },
        "data": {"message_id": "m-1", "count": 2},
    }


def test_detail_is_compact_json() -> None:
    assert ", " not in event(data={"a": 1, "b": 2}).detail()
    assert ": " not in event(data={"a": 1, "b": 2}).detail()


def test_detail_renders_non_json_values_as_strings() -> None:
    detail = json.loads(event(data={"when": AT}).detail())

    assert detail["data"]["when"] == str(AT)


@pytest.mark.parametrize("detail_type", ["messageRecorded", "Message-Recorded", "Message Recorded", "", "M1"])
def test_detail_type_must_be_a_pascal_case_name(detail_type: str) -> None:
    with pytest.raises(ValidationError):
        event(detail_type=detail_type)


def test_events_are_frozen() -> None:
    with pytest.raises(ValidationError):
        event().tenant = "globex"  # type: ignore[misc]


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

    EventBridgePublisher("b", "s", client=client).publish([event()])  # type: ignore[arg-type]

    assert client.calls[0][0]["TraceHeader"] == "Root=1-691ee2d2-4c6b1f0e2a9d3c8b7e6f5a41;Sampled=1"


@pytest.mark.parametrize(("count", "sizes"), [(0, []), (1, [1]), (10, [10]), (11, [10, 1]), (25, [10, 10, 5])])
def test_events_are_sent_in_batches_of_ten(count: int, sizes: list[int]) -> None:
    client = FakeEventBridge()
    items = [event(n) for n in range(count)]

    EventBridgePublisher("b", "s", client=client).publish(items)  # type: ignore[arg-type]

    assert [len(call) for call in client.calls] == sizes
    sent = [json.loads(entry["Detail"])["data"]["n"] for call in client.calls for entry in call]
    assert sent == list(range(count))


def test_a_rejected_entry_raises_naming_it() -> None:
    client = FakeEventBridge(reject={0: {1}})
    items = [event(0, event_id="e-0"), event(1, event_id="e-1"), event(2, event_id="e-2")]

    with pytest.raises(DependencyFailure) as raised:
        EventBridgePublisher("b", "s", client=client).publish(items)  # type: ignore[arg-type]

    assert raised.value.status == 503
    assert "rejected 1 event(s)" in raised.value.message
    assert "MessageRecorded/e-1: InternalFailure" in raised.value.message
    assert "e-0" not in raised.value.message
    assert "e-2" not in raised.value.message


def test_a_rejection_in_a_later_batch_stops_there() -> None:
    client = FakeEventBridge(reject={1: {0, 3}})
    items = [event(n, event_id=f"e-{n}") for n in range(25)]

    with pytest.raises(DependencyFailure) as raised:
        EventBridgePublisher("b", "s", client=client).publish(items)  # type: ignore[arg-type]

    assert len(client.calls) == 2
    assert "rejected 2 event(s)" in raised.value.message
    assert "e-10" in raised.value.message
    assert "e-13" in raised.value.message
