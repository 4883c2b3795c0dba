"""Use cases of the platform domain's health checks."""

from __future__ import annotations

from functions.platform.dal.heartbeats import HeartbeatStore
from functions.platform.models.entities import Heartbeat
from shared import clock


def latest_heartbeat(store: HeartbeatStore) -> Heartbeat | None:
    """The last heartbeat that the health workflow recorded, if any."""
    return store.latest()


def record_heartbeat(store: HeartbeatStore, execution: str | None) -> Heartbeat:
    """Record that the health workflow reached its probe step now, and return the heartbeat."""
    heartbeat = Heartbeat(checked_at=clock.now(), execution=execution)
    store.save(heartbeat)
    return heartbeat
