"""The port that publishes domain events to the project's EventBridge bus, and its adapter."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ConfigDict, Field

from shared import clock
from shared.errors import DependencyFailure
from shared.models import Model

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

_PUT_EVENTS_LIMIT = 10


class DomainEvent(Model):
    """An event other domains may react to. `detail_type` is its name (`MessageRecorded`, ...)."""

    model_config = ConfigDict(frozen=True)

    detail_type: str = Field(pattern=r"^[A-Z][A-Za-z]+$")
    tenant: str
    data: dict[str, Any]
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: datetime = Field(default_factory=clock.now)
    correlation_id: str | None = None
    version: str = "1"

    def detail(self) -> str:
        return json.dumps(
            {
                "metadata": {
                    "event_id": self.event_id,
                    "tenant": self.tenant,
                    "occurred_at": clock.isoformat(self.occurred_at),
                    "correlation_id": self.correlation_id,
                    "version": self.version,
                },
                "data": self.data,
            },
            separators=(",", ":"),
            default=str,
        )


class EventPublisher(Protocol):
    def publish(self, events: Sequence[DomainEvent]) -> None: ...


class EventBridgePublisher:
    """Publishes to one bus as `source`, ten entries per call; any rejected entry raises DependencyFailure."""

    def __init__(self, bus_name: str, source: str, client: EventBridgeClient | None = None) -> None:
        self._bus = bus_name
        self._source = source
        self._client = client

    @property
    def client(self) -> EventBridgeClient:
        if self._client is None:
            from shared.aws import client

            self._client = client("events")
        return self._client

    def publish(self, events: Sequence[DomainEvent]) -> None:
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        for start in range(0, len(events), _PUT_EVENTS_LIMIT):
            chunk = events[start : start + _PUT_EVENTS_LIMIT]
            entries: list[Any] = [
                {
                    "EventBusName": self._bus,
                    "Source": self._source,
                    "DetailType": event.detail_type,
                    "Detail": event.detail(),
                    "Time": event.occurred_at,
                    **({"TraceHeader": trace} if trace else {}),
                }
                for event in chunk
            ]
            response = self.client.put_events(Entries=entries)
            if response.get("FailedEntryCount"):
                failed = [
                    f"{event.detail_type}/{event.event_id}: {result.get('ErrorCode')}"
                    for event, result in zip(chunk, response["Entries"], strict=True)
                    if result.get("ErrorCode")
                ]
                raise DependencyFailure(f"EventBridge rejected {len(failed)} event(s): {', '.join(failed)}")
