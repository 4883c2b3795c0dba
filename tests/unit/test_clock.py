"""The one clock: UTC-aware, movable by an offset, freezable, and always reset after each test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared import clock


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.freeze(None)
    clock.set_offset(0)


def test_now_is_timezone_aware_utc() -> None:
    moment = clock.now()

    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)
    assert abs(moment - datetime.now(UTC)) < timedelta(seconds=5)


def test_offset_moves_the_clock_forward() -> None:
    clock.set_offset(3600)

    assert clock.offset_seconds() == 3600
    assert abs(clock.now() - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(seconds=5)


def test_offset_back_to_zero() -> None:
    clock.set_offset(86400)
    clock.set_offset(0)

    assert clock.offset_seconds() == 0
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_freeze_pins_the_clock() -> None:
    at = datetime(2025, 11, 20, 9, 15, 30, tzinfo=UTC)
    clock.freeze(at)

    assert clock.now() == at
    assert clock.now() == at


def test_frozen_clock_ignores_the_offset() -> None:
    at = datetime(2025, 11, 20, 9, 15, 30, tzinfo=UTC)
    clock.freeze(at)
    clock.set_offset(60)

    assert clock.now() == at


def test_unfreezing_lets_the_clock_run() -> None:
    clock.freeze(datetime(2000, 1, 1, tzinfo=UTC))
    clock.freeze(None)

    assert clock.now().year >= 2025


def test_naive_datetimes_cannot_be_frozen() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.freeze(datetime(2025, 1, 1))  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 11, 20, 9, 15, 30, 123456, tzinfo=UTC), "2025-11-20T09:15:30.123Z"),
        (datetime(2025, 11, 20, 9, 15, 30, tzinfo=UTC), "2025-11-20T09:15:30.000Z"),
        (datetime(2025, 11, 20, 11, 15, 30, tzinfo=timezone(timedelta(hours=2))), "2025-11-20T09:15:30.000Z"),
    ],
)
def test_isoformat_is_utc_with_milliseconds_and_z(moment: datetime, expected: str) -> None:
    assert clock.isoformat(moment) == expected
