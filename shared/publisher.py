"""The EventBridge adapter of the event-publishing port (shared.events.EventPublisher).

Its own module, so that importing the event model (every domain's events, every consumer) does not load the bus
client: only the functions that publish import this one.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shared.aws import LazyClient
from shared.events import DomainEvent, PublishFailure, _checked

_PUT_EVENTS_LIMIT = 10

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

# Entry errors that another attempt cannot fix.
_PERMANENT = frozenset({"MalformedDetail", "InvalidArgument", "ValidationException", "AccessDeniedException"})


class EventBridgePublisher:
    """Publishes to one bus as `source`, ten entries per call. Entries that EventBridge rejects are retried
    alone (never the accepted ones) up to `max_attempts` times in all, with exponential backoff and full jitter;
    what still fails raises PublishFailure naming it, after every other event was sent."""

    def __init__(
        self,
        bus_name: str,
        source: str,
        client: EventBridgeClient | None = None,
        *,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._bus = bus_name
        self._source = source
        self._client = client
        self._max_attempts = max(1, max_attempts)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep

    client: LazyClient[EventBridgeClient] = LazyClient("events")

    def _entry(self, event: DomainEvent, trace: str | None) -> Any:
        return {
            "EventBusName": self._bus,
            "Source": self._source,
            "DetailType": event.detail_type,
            "Detail": event.detail(),
            "Time": event.occurred_at,
            **({"TraceHeader": trace} if trace else {}),
        }

    def publish(self, events: Sequence[DomainEvent]) -> None:
        checked = [_checked(event) for event in events]  # refuse the whole batch before sending any of it
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        failed: list[tuple[DomainEvent, str]] = []
        for start in range(0, len(checked), _PUT_EVENTS_LIMIT):
            failed.extend(self._send(checked[start : start + _PUT_EVENTS_LIMIT], trace))
        if failed:
            names = ", ".join(f"{event.detail_type}/{event.event_id}: {code}" for event, code in failed)
            raise PublishFailure(f"EventBridge rejected {len(failed)} event(s): {names}", [e for e, _ in failed])

    def _send(self, chunk: list[DomainEvent], trace: str | None) -> list[tuple[DomainEvent, str]]:
        """Send one chunk, retrying only the rejected entries; return those still rejected, with their code."""
        pending = chunk
        permanent: list[tuple[DomainEvent, str]] = []
        for attempt in range(1, self._max_attempts + 1):
            response = self.client.put_events(Entries=[self._entry(event, trace) for event in pending])
            if not response.get("FailedEntryCount"):
                return permanent
            retry: list[tuple[DomainEvent, str]] = []
            for event, result in zip(pending, response["Entries"], strict=True):
                code = result.get("ErrorCode")
                if code:
                    (permanent if code in _PERMANENT else retry).append((event, str(code)))
            if not retry:
                return permanent
            if attempt == self._max_attempts:
                return permanent + retry
            pending = [event for event, _ in retry]
            ceiling = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
            self._sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not cryptography
        return permanent  # pragma: no cover - the loop always returns
