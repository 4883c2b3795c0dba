"""Use cases of the platform domain's health checks."""

from __future__ import annotations

from datetime import timedelta

from functions.platform.dal.heartbeats import HeartbeatStore
from functions.platform.models.entities import Health, HealthStatus, Heartbeat
from shared import clock


def check_health(store: HeartbeatStore, stale_after: timedelta) -> Health:
    """`ok` when the health workflow recorded a heartbeat within `stale_after`, `degraded` otherwise.

    A missing heartbeat is degraded too: the workflow never ran end to end, whatever the reason.
    """
    heartbeat = store.latest()
    fresh = heartbeat is not None and clock.now() - heartbeat.checked_at <= stale_after
    return Health(
        status=HealthStatus.OK if fresh else HealthStatus.DEGRADED,
        last_heartbeat=heartbeat.checked_at if heartbeat else None,
    )


def record_heartbeat(store: HeartbeatStore, execution: str | None) -> Heartbeat:
    """Record that the health workflow reached its probe step now, and return the heartbeat."""
    heartbeat = Heartbeat(checked_at=clock.now(), execution=execution)
    store.save(heartbeat)
    return heartbeat
