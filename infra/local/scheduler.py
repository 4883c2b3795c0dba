"""The local scheduler: fires the template's scheduled rules by the runtime's clock, which can be moved
forward, and on demand. EventBridge does not fire schedules in the emulator, so this stands in for it."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from infra.local.template import ScheduleDef

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_NAMES = {
    "JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10,
    "NOV": 11, "DEC": 12, "SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7,
}  # fmt: skip
_MAX_CRON_SCAN_MINUTES = 366 * 24 * 60


class ScheduleError(ValueError):
    pass


class LocalClock:
    """Real time plus an offset that only grows: the clock of the whole local runtime."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ScheduleError("the clock only moves forward")
        with self._lock:
            self._offset += seconds


def _cron_field(spec: str, value: int, low: int, high: int) -> bool:
    if spec in ("*", "?"):
        return True
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-")
            start, end = int(_NAMES.get(a, a)), int(_NAMES.get(b, b))
        else:
            start = int(_NAMES.get(part, part))
            end = start if "/" not in spec else high
        if start <= value <= end and (value - start) % step == 0:
            return True
    return False


def cron_matches(expression: str, moment: datetime) -> bool:
    """Whether EventBridge's six-field cron (minutes hours day-of-month month day-of-week year) fires at `moment`."""
    fields = expression.split()
    if len(fields) != 6 or any(ch in expression for ch in "LW#"):
        raise ScheduleError(f"cron({expression}) uses a form the local scheduler does not support")
    minute, hour, dom, month, dow, year = fields
    aws_dow = (moment.isoweekday() % 7) + 1  # EventBridge: 1 = Sunday
    return (
        _cron_field(minute, moment.minute, 0, 59)
        and _cron_field(hour, moment.hour, 0, 23)
        and _cron_field(dom, moment.day, 1, 31)
        and _cron_field(month, moment.month, 1, 12)
        and _cron_field(dow, aws_dow, 1, 7)
        and _cron_field(year, moment.year, 1970, 2199)
    )


@dataclass
class _Entry:
    schedule: ScheduleDef
    last_checked: datetime
    next_due: datetime | None = None
    period: timedelta | None = None
    cron: str | None = None
    fired: int = 0
    history: list[str] = field(default_factory=list)


class Scheduler:
    def __init__(
        self, schedules: list[ScheduleDef], clock: LocalClock, fire: Callable[[ScheduleDef, datetime], list[str]]
    ) -> None:
        self._clock = clock
        self._fire = fire
        self._lock = threading.Lock()
        self._stop = threading.Event()
        start = clock.now()
        self._entries: dict[str, _Entry] = {}
        for schedule in schedules:
            entry = _Entry(schedule=schedule, last_checked=start)
            rate = _RATE.match(schedule.expression)
            if rate:
                entry.period = timedelta(seconds=int(rate.group(1)) * _UNITS[rate.group(2).rstrip("s")])
                entry.next_due = start + entry.period
            elif schedule.expression.startswith("cron(") and schedule.expression.endswith(")"):
                entry.cron = schedule.expression[5:-1]
                cron_matches(entry.cron, start)  # reject unsupported forms at start, loudly
            else:
                raise ScheduleError(f"{schedule.logical_id}: unsupported schedule {schedule.expression}")
            self._entries[schedule.logical_id] = entry
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()

    def tick(self) -> dict[str, list[str]]:
        """Fire every rule that fell due since the last tick (once per rule per tick: missed runs coalesce)."""
        now = self._clock.now()
        fired: dict[str, list[str]] = {}
        with self._lock:
            for logical_id, entry in self._entries.items():
                if self._due(entry, now):
                    fired[logical_id] = self._run_entry(entry, now)
                entry.last_checked = now
        return fired

    def _due(self, entry: _Entry, now: datetime) -> bool:
        if entry.period is not None and entry.next_due is not None:
            if now < entry.next_due:
                return False
            missed = (now - entry.next_due) // entry.period
            entry.next_due += entry.period * (missed + 1)
            return True
        assert entry.cron is not None
        moment = entry.last_checked.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(_MAX_CRON_SCAN_MINUTES):
            if moment > now:
                return False
            if cron_matches(entry.cron, moment):
                return True
            moment += timedelta(minutes=1)
        return True

    def _run_entry(self, entry: _Entry, now: datetime) -> list[str]:
        started = self._fire(entry.schedule, now)
        entry.fired += 1
        entry.history = (entry.history + started)[-20:]
        return started

    def run_now(self, logical_id: str) -> list[str]:
        entry = self._entries.get(logical_id)
        if entry is None:
            raise KeyError(logical_id)
        with self._lock:
            return self._run_entry(entry, self._clock.now())

    def describe(self) -> list[dict[str, object]]:
        return [
            {
                "rule": logical_id,
                "expression": e.schedule.expression,
                "next_due": e.next_due.isoformat() if e.next_due else None,
                "fired": e.fired,
                "recent": e.history[-5:],
            }
            for logical_id, e in self._entries.items()
        ]
