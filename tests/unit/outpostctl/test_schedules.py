"""Schedules: cron fields checked one by one, next due time shown in the schedule's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from outpostctl.scheduler_client import Schedule
from outpostctl.schedules import (
    check_cron_field,
    check_timezone,
    cron_fields_text,
    cron_text,
    next_due_text,
)

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def schedule(**changes: object) -> Schedule:
    fields: dict[str, object] = {
        "name": "nightly",
        "discovery": "lab",
        "minute": "0",
        "hour": "2",
        "day_of_month": "*",
        "month": "*",
        "day_of_week": "mon-fri",
        "timezone": "Europe/Berlin",
        "enabled": True,
        "missed_run_policy": "skip",
        "next_due_at": datetime(2026, 11, 25, 1, 0, tzinfo=UTC),
    }
    return Schedule(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("position", "value"),
    [
        (0, "0"),
        (0, "*/15"),
        (0, "5,35"),
        (1, "8-18"),
        (2, "1-7"),
        (3, "jan"),
        (3, "1-6"),
        (4, "mon-fri"),
        (4, "0"),
        (4, "7"),
        (1, " 2 "),
    ],
)
def test_valid_cron_fields_pass_stripped(position: int, value: str) -> None:
    assert check_cron_field(position, value) == value.strip()


@pytest.mark.parametrize(
    ("position", "value", "message"),
    [
        (0, "60", "'60' is not a valid cron minute field"),
        (1, "24", "'24' is not a valid cron hour field"),
        (2, "0", "'0' is not a valid cron day of month field"),
        (3, "13", "'13' is not a valid cron month field"),
        (4, "8", "'8' is not a valid cron day of week field"),
        (0, "", "--minute takes one cron field without spaces"),
        # Two fields in one flag would shift every later field (croniter takes six fields as seconds first).
        (0, "0 0", "--minute takes one cron field without spaces"),
    ],
)
def test_invalid_cron_fields_name_their_flag_or_field(position: int, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_cron_field(position, value)


def test_time_zones_are_iana_names() -> None:
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"
    assert check_timezone("UTC") == "UTC"
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(ValueError, match="unknown time zone"):
            check_timezone(bad)


def test_cron_prints_as_crontab_writes_it() -> None:
    assert cron_fields_text(schedule()) == "0 2 * * mon-fri"
    assert cron_text(schedule()) == "`0 2 * * mon-fri` (Europe/Berlin)"
    assert cron_text(schedule(timezone="")) == "`0 2 * * mon-fri` (UTC)"


def test_next_due_is_shown_in_the_schedules_own_zone() -> None:
    assert next_due_text(schedule(), NOW) == "2026-11-25 02:00 CET (in 5h)"
    assert next_due_text(schedule(timezone="UTC"), NOW) == "2026-11-25 01:00 UTC (in 5h)"


def test_next_due_follows_daylight_saving_time() -> None:
    summer = schedule(next_due_at=datetime(2026, 7, 1, 0, 0, tzinfo=UTC))
    assert next_due_text(summer, datetime(2026, 6, 30, 23, 0, tzinfo=UTC)) == "2026-07-01 02:00 CEST (in 1h)"


def test_a_schedule_without_a_next_due_time_says_so() -> None:
    assert next_due_text(schedule(next_due_at=None), NOW) == "not due"
