"""The local scheduler: EventBridge's cron fields, and rules and EventBridge Scheduler schedules fired by the
runtime's clock; an expression it cannot run stops the runtime at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra.local.scheduler import LocalClock, ScheduleError, Scheduler, cron_matches
from infra.local.template import ScheduleDef

# 2026-11-23 is a Monday; 1 November 2026 is a Sunday
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
WEEKDAYS = [d for d in range(1, 31) if d % 7 not in (0, 1)]


def minutes_matching(expression: str, hour: int = 0) -> list[int]:
    return [m for m in range(60) if cron_matches(expression, MONDAY.replace(hour=hour, minute=m))]


@pytest.mark.parametrize(
    ("expression", "minutes"),
    [
        ("0/15 * * * ? *", [0, 15, 30, 45]),
        ("5,20/30 * * * ? *", [5, 20, 50]),  # 5 alone, then from 20 every 30: not every minute from 5
        ("10-20/5 * * * ? *", [10, 15, 20]),
        ("*/20 * * * ? *", [0, 20, 40]),
        ("7 * * * ? *", [7]),
        ("1,2,3 * * * ? *", [1, 2, 3]),
        ("58-59 * * * ? *", [58, 59]),
    ],
)
def test_minute_fields(expression: str, minutes: list[int]) -> None:
    assert minutes_matching(expression) == minutes


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 9 ? * MON-FRI *", WEEKDAYS),
        ("0 9 ? * 2-6 *", WEEKDAYS),  # the same in numbers: 1 is Sunday
        ("0 9 ? * SUN,SAT *", [1, 7, 8, 14, 15, 21, 22, 28, 29]),
        ("0 9 ? * mon *", [2, 9, 16, 23, 30]),
        ("0 9 1,15 * ? *", [1, 15]),
        ("0 9 ? NOV MON 2026", [2, 9, 16, 23, 30]),
        ("0 9 ? DEC MON 2026", []),
        ("0 9 ? * * 2027", []),
    ],
)
def test_day_fields_and_names(expression: str, days: list[int]) -> None:
    in_november = [MONDAY.replace(day=d, hour=9) for d in range(1, 31)]
    assert [m.day for m in in_november if cron_matches(expression, m)] == days


@pytest.mark.parametrize(
    "expression",
    [
        "0 9 L * ? *",  # last day of month
        "0 9 ? * 2#1 *",  # first Monday
        "0 9 15W * ? *",
        "0 9 * * *",  # five fields
        "0 9 * * MON *",  # neither day field is ?
        "61 * * * ? *",
        "0/0 * * * ? *",
        "20-10 * * * ? *",
        "0 9 ? * FUNDAY *",
    ],
)
def test_unsupported_or_invalid_cron_fails_loudly(expression: str) -> None:
    with pytest.raises(ScheduleError):
        cron_matches(expression, MONDAY)


def schedule(expression: str, source: str = "rule", timezone: str = "UTC", name: str = "S") -> ScheduleDef:
    return ScheduleDef(name, expression, (), source=source, timezone=timezone)


def fires(schedules: list[ScheduleDef]) -> tuple[LocalClock, Scheduler, list[str]]:
    clock, fired = LocalClock(), []

    def fire(schedule: ScheduleDef, now: object) -> list[str]:
        fired.append(schedule.logical_id)
        return [schedule.logical_id]

    scheduler = Scheduler(schedules, clock, fire)
    return clock, scheduler, fired


@pytest.mark.parametrize(
    ("expression", "source"),
    [
        ("rate(5 fortnights)", "rule"),
        ("rate(1 minutes)", "rule"),
        ("rate(5 minute)", "rule"),
        ("at(2030-01-01T00:00:00)", "rule"),  # at() is EventBridge Scheduler's only
        ("at(tomorrow)", "scheduler"),
        ("cron(0 9 L * ? *)", "scheduler"),
        ("every day", "rule"),
    ],
)
def test_a_schedule_the_scheduler_cannot_run_stops_it_at_start_naming_it(expression: str, source: str) -> None:
    with pytest.raises(ScheduleError, match="^Nightly: "):
        Scheduler([schedule(expression, source, name="Nightly")], LocalClock(), lambda s, now: [])


def test_an_unknown_time_zone_stops_it_at_start() -> None:
    with pytest.raises(ScheduleError, match="time zone"):
        Scheduler([schedule("cron(0 9 * * ? *)", "scheduler", "Mars/Olympus")], LocalClock(), lambda s, now: [])


def test_a_scheduler_at_expression_fires_once_when_its_moment_passes() -> None:
    moment = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S")
    clock, scheduler, fired = fires([schedule(f"at({moment})", "scheduler", name="Once")])
    assert scheduler.tick() == {}
    clock.advance(2 * 86400)
    assert scheduler.tick() == {}
    clock.advance(2 * 86400)
    assert scheduler.tick() == {"Once": ["Once"]}
    clock.advance(30 * 86400)
    assert scheduler.tick() == {}
    assert fired == ["Once"]


def test_a_scheduler_cron_runs_in_its_time_zone() -> None:
    # 09:00 in Auckland (UTC+13 in November) is 20:00 UTC the day before: moving a day ahead crosses it once
    clock, scheduler, fired = fires([schedule("cron(0 9 * * ? *)", "scheduler", "Pacific/Auckland", "Nz")])
    clock.advance(86400)
    assert scheduler.tick() == {"Nz": ["Nz"]}
    described = scheduler.describe()[0]
    assert described["kind"] == "scheduler" and described["timezone"] == "Pacific/Auckland"


def test_a_rate_rule_fires_when_due_and_missed_runs_coalesce() -> None:
    clock, scheduler, fired = fires([schedule("rate(5 minutes)"), schedule("rate(1 day)", name="Daily")])
    assert scheduler.tick() == {}
    clock.advance(301)
    assert scheduler.tick() == {"S": ["S"]}
    clock.advance(86400)
    assert set(scheduler.tick()) == {"S", "Daily"}
    assert fired.count("S") == 2
