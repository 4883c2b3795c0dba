"""The one clock. Everything that needs "now" asks `now()`; tests and the local runtime move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    """The current time, timezone-aware UTC, shifted by the offset that the local runtime may set."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


def set_offset(seconds: float) -> None:
    """Move the clock to `seconds` ahead of real time (local runtime only: never called in AWS)."""
    global _offset
    _offset = timedelta(seconds=seconds)


def offset_seconds() -> float:
    return _offset.total_seconds()


def freeze(at: datetime | None) -> None:
    """Pin the clock at `at` (tests); `None` lets it run again."""
    global _frozen
    if at is not None and at.tzinfo is None:
        raise ValueError("the clock only holds timezone-aware datetimes")
    _frozen = at


def isoformat(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, the one timestamp format of records and events."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
