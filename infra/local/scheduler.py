"""The local scheduler: fires the template's scheduled rules (AWS::Events::Rule with a ScheduleExpression) and
EventBridge Scheduler schedules (AWS::Scheduler::Schedule) by the runtime's clock, which can be moved forward, and
on demand. The emulator fires neither, so this stands in for both."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from infra.local.template import ScheduleDef

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
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


_CRON_FIELDS = (  # EventBridge's six fields: name, lowest, highest
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 1, 7),
    ("year", 1970, 2199),
)


def _value(text: str, what: str, low: int, high: int) -> int:
    value = _NAMES.get(text.upper()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise ScheduleError(f"{what}: {text!r} is not a value from {low} to {high}")
    return value


def _cron_values(spec: str, what: str, low: int, high: int) -> frozenset[int]:
    """The values one cron field allows: lists of `*`, `?`, `n`, `a-b`, each optionally `/step`."""
    if spec == "?":
        return frozenset(range(low, high + 1))
    allowed: set[int] = set()
    for part in spec.split(","):
        base, slash, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if slash and step is None:
            raise ScheduleError(f"{what}: {part!r} has no positive step")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, what, low, high), _value(b, what, low, high)
            if end < start:
                raise ScheduleError(f"{what}: the range {base!r} runs backwards")
        else:
            start = _value(base, what, low, high)
            end = high if slash else start  # `5/15`: from 5, every 15, to the field's end
        allowed.update(range(start, end + 1, step or 1))
    return frozenset(allowed)


@dataclass(frozen=True)
class Cron:
    """An EventBridge cron expression (minutes hours day-of-month month day-of-week year), compiled."""

    expression: str
    fields: tuple[frozenset[int], ...]

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split()
        if len(parts) != 6:
            raise ScheduleError(f"cron({expression}) needs six fields, has {len(parts)}")
        if any(ch in expression.upper() for ch in "LW#"):
            raise ScheduleError(f"cron({expression}) uses L, W or #, which the local scheduler does not support")
        if "?" not in (parts[2], parts[4]):
            raise ScheduleError(f"cron({expression}): one of day-of-month and day-of-week must be ?")
        try:
            fields = tuple(
                _cron_values(spec.upper(), what, low, high)
                for spec, (what, low, high) in zip(parts, _CRON_FIELDS, strict=True)
            )
        except ScheduleError as exc:
            raise ScheduleError(f"cron({expression}): {exc}") from None
        return cls(expression, fields)

    def matches(self, moment: datetime) -> bool:
        aws_dow = (moment.isoweekday() % 7) + 1  # EventBridge: 1 = Sunday
        values = (moment.minute, moment.hour, moment.day, moment.month, aws_dow, moment.year)
        return all(v in allowed for v, allowed in zip(values, self.fields, strict=True))


def cron_matches(expression: str, moment: datetime) -> bool:
    """Whether EventBridge's six-field cron fires at `moment` (in the expression's time zone)."""
    return Cron.parse(expression).matches(moment)


@dataclass
class _Entry:
    schedule: ScheduleDef
    last_checked: datetime
    zone: tzinfo = UTC
    next_due: datetime | None = None
    period: timedelta | None = None
    cron: Cron | None = None
    once: bool = False  # at(): fires once, then never again
    fired: int = 0
    history: list[str] = field(default_factory=list)


def _entry(schedule: ScheduleDef, start: datetime) -> _Entry:
    """The schedule's entry; ScheduleError, naming the schedule, for any form the local scheduler cannot run."""
    expression = schedule.expression.strip()
    try:
        zone: tzinfo = UTC if schedule.timezone in ("UTC", "Etc/UTC") else ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{schedule.logical_id}: unknown time zone {schedule.timezone!r}") from None
    entry = _Entry(schedule=schedule, last_checked=start, zone=zone)
    try:
        if rate := _RATE.match(expression):
            count, unit = int(rate.group(1)), rate.group(2)
            if count < 1 or (count == 1) != (not unit.endswith("s")):
                raise ScheduleError(f"{expression}: use `1 {unit.rstrip('s')}` or `<n> {unit.rstrip('s')}s`")
            entry.period = timedelta(seconds=count * _UNITS[unit.rstrip("s")])
            entry.next_due = start + entry.period
        elif expression.startswith("cron(") and expression.endswith(")"):
            entry.cron = Cron.parse(expression[5:-1])
        elif (at := _AT.match(expression)) and schedule.source == "scheduler":
            local = datetime.fromisoformat(at.group(1)).replace(tzinfo=zone)
            entry.next_due, entry.once = local.astimezone(UTC), True
        else:
            raise ScheduleError(f"{expression} is not a rate(), cron() or (EventBridge Scheduler only) at() expression")
    except ScheduleError as exc:
        raise ScheduleError(f"{schedule.logical_id}: {exc}") from None
    return entry


class Scheduler:
    """Fires EventBridge scheduled rules and EventBridge Scheduler schedules alike: every expression is checked
    when the scheduler is built, so an unsupported form stops the runtime at start, loudly."""

    def __init__(
        self, schedules: list[ScheduleDef], clock: LocalClock, fire: Callable[[ScheduleDef, datetime], list[str]]
    ) -> None:
        self._clock = clock
        self._fire = fire
        self._lock = threading.Lock()
        self._stop = threading.Event()
        start = clock.now()
        self._entries = {schedule.logical_id: _entry(schedule, start) for schedule in schedules}
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
        if entry.once:
            if entry.next_due is None or now < entry.next_due:
                return False
            entry.next_due = None
            return True
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
            if entry.cron.matches(moment.astimezone(entry.zone)):
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
                "kind": e.schedule.source,
                "expression": e.schedule.expression,
                "timezone": e.schedule.timezone,
                "next_due": e.next_due.isoformat() if e.next_due else None,
                "fired": e.fired,
                "recent": e.history[-5:],
            }
            for logical_id, e in self._entries.items()
        ]
