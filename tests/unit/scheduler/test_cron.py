"""Due-time computation: validation, UTC arithmetic, and daylight saving time in several zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outpost import errors
from services.scheduler.domain.cron import CronSpec, newest_due, next_due, parse_cron

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def spec(expression: str, timezone: str = "UTC") -> CronSpec:
    minute, hour, dom, month, dow = expression.split()
    return parse_cron(
        minute=minute, hour=hour, day_of_month=dom, month=month, day_of_week=dow, timezone=timezone, now=NOW
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def due_between(s: CronSpec, after: datetime, until: datetime) -> list[datetime]:
    """Every due instant in (after, until], by stepping next_due."""
    found = []
    current = next_due(s, after)
    while current is not None and current <= until:
        found.append(current)
        current = next_due(s, current)
    return found


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("61", "*", "*", "*", "*"), "invalid cron expression '61 * * * *'"),
        (("*/0", "*", "*", "*", "*"), "step '0'"),
        (("* *", "*", "*", "*", "*"), "cron field minute must be one field without spaces"),
        (("H", "*", "*", "*", "*"), "Hashed definitions must include hash_id"),
        (("0", "0", "31", "2", "*"), "never falls due"),
        (("*", "*", "*", "*", "8"), "out of range"),
    ],
)
def test_a_bad_cron_expression_is_refused_with_croniters_message(fields: tuple[str, ...], message: str) -> None:
    minute, hour, dom, month, dow = fields
    with pytest.raises(errors.InvalidArgument, match=message.replace("*", r"\*")):
        parse_cron(minute=minute, hour=hour, day_of_month=dom, month=month, day_of_week=dow, timezone="UTC", now=NOW)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "Europe/"])
def test_an_unknown_time_zone_is_refused(zone: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="unknown time zone"):
        spec("* * * * *", zone)


def test_empty_fields_mean_every_value_and_an_empty_zone_means_utc() -> None:
    s = parse_cron(minute="5", hour="", day_of_month="", month="", day_of_week=" ", timezone="", now=NOW)
    assert (s.expression, s.timezone) == ("5 * * * *", "UTC")


def test_fixed_time_follows_vixie_cron_star_rule() -> None:
    assert spec("30 2 * * *").fixed_time
    assert spec("0,30 1-3 * * 1-5").fixed_time
    assert not spec("*/15 2 * * *").fixed_time
    assert not spec("0 * * * *").fixed_time


# --- UTC ---------------------------------------------------------------------------------


def test_next_due_is_strictly_after_and_on_a_whole_minute() -> None:
    s = spec("*/5 * * * *")
    assert next_due(s, utc(2025, 3, 1, 10, 4, 59)) == utc(2025, 3, 1, 10, 5)
    assert next_due(s, utc(2025, 3, 1, 10, 5)) == utc(2025, 3, 1, 10, 10)
    assert next_due(s, datetime(2025, 3, 1, 10, 5, 0, 1, tzinfo=UTC)) == utc(2025, 3, 1, 10, 10)


def test_newest_due_takes_only_the_newest_minute_of_a_long_window() -> None:
    s = spec("*/5 * * * *")
    assert newest_due(s, utc(2025, 3, 1, 10, 0), utc(2025, 3, 1, 12, 7, 30)) == utc(2025, 3, 1, 12, 5)


def test_newest_due_window_is_open_below_and_closed_above() -> None:
    s = spec("0 * * * *")
    assert newest_due(s, utc(2025, 3, 1, 10, 0), utc(2025, 3, 1, 10, 59)) is None
    assert newest_due(s, utc(2025, 3, 1, 9, 59, 59), utc(2025, 3, 1, 10, 0)) == utc(2025, 3, 1, 10, 0)
    assert newest_due(s, utc(2025, 3, 1, 10, 0), utc(2025, 3, 1, 10, 0)) is None


def test_a_one_second_tick_window_finds_the_minute_exactly_once() -> None:
    s = spec("* * * * *")
    start = utc(2025, 3, 1, 10, 0, 0)
    hits = [newest_due(s, start + timedelta(seconds=i), start + timedelta(seconds=i + 1)) for i in range(-3, 125)]
    assert [h for h in hits if h is not None] == [utc(2025, 3, 1, 10, m) for m in (0, 1, 2)]


def test_a_sparse_schedule_is_found_across_months() -> None:
    s = spec("0 6 29 2 *")  # leap days only
    assert next_due(s, utc(2025, 1, 1)) == utc(2028, 2, 29, 6)
    assert newest_due(s, utc(2020, 1, 1), utc(2027, 12, 31)) == utc(2024, 2, 29, 6)


def test_day_of_month_and_day_of_week_combine_with_or_like_cron() -> None:
    s = spec("0 0 13 * 5")  # the 13th, and every Friday
    assert due_between(s, utc(2025, 6, 1), utc(2025, 6, 14)) == [
        utc(2025, 6, 6),
        utc(2025, 6, 13),  # Friday the 13th, once
    ]


# --- time zones and DST ------------------------------------------------------------------


def test_a_daily_schedule_follows_local_time_across_the_spring_change() -> None:
    s = spec("0 9 * * *", "Europe/Berlin")
    assert due_between(s, utc(2025, 3, 29), utc(2025, 3, 31, 12)) == [
        utc(2025, 3, 29, 8),  # 09:00 CET
        utc(2025, 3, 30, 7),  # 09:00 CEST
        utc(2025, 3, 31, 7),
    ]


def test_a_fixed_time_in_the_spring_gap_runs_as_if_clocks_had_not_changed() -> None:
    s = spec("30 2 * * *", "Europe/Berlin")  # 02:30 does not exist on 2025-03-30
    assert due_between(s, utc(2025, 3, 29), utc(2025, 3, 31, 12)) == [
        utc(2025, 3, 29, 1, 30),  # 02:30 CET
        utc(2025, 3, 30, 1, 30),  # shown as 03:30 CEST
        utc(2025, 3, 31, 0, 30),  # 02:30 CEST
    ]


def test_a_wildcard_schedule_skips_the_minutes_the_spring_change_removes() -> None:
    s = spec("*/30 * * * *", "Europe/Berlin")
    assert due_between(s, utc(2025, 3, 30, 0, 15), utc(2025, 3, 30, 2, 0)) == [
        utc(2025, 3, 30, 0, 30),  # 01:30 CET
        utc(2025, 3, 30, 1, 0),  # 03:00 CEST: 02:00 and 02:30 never happened
        utc(2025, 3, 30, 1, 30),
        utc(2025, 3, 30, 2, 0),
    ]


def test_a_fixed_time_repeated_by_the_autumn_change_runs_once() -> None:
    s = spec("30 2 * * *", "Europe/Berlin")  # 02:30 happens twice on 2025-10-26
    assert due_between(s, utc(2025, 10, 25), utc(2025, 10, 27, 12)) == [
        utc(2025, 10, 25, 0, 30),
        utc(2025, 10, 26, 0, 30),  # 02:30 CEST, the first time; not again at 02:30 CET
        utc(2025, 10, 27, 1, 30),
    ]
    assert newest_due(s, utc(2025, 10, 26, 0, 45), utc(2025, 10, 26, 3)) is None


def test_a_wildcard_schedule_runs_through_the_repeated_hour_as_elapsed_time() -> None:
    s = spec("*/30 * * * *", "Europe/Berlin")
    assert due_between(s, utc(2025, 10, 25, 23, 15), utc(2025, 10, 26, 2)) == [
        utc(2025, 10, 25, 23, 30),  # 01:30 CEST
        utc(2025, 10, 26, 0, 0),  # 02:00 CEST
        utc(2025, 10, 26, 0, 30),  # 02:30 CEST
        utc(2025, 10, 26, 1, 0),  # 02:00 CET
        utc(2025, 10, 26, 1, 30),  # 02:30 CET
        utc(2025, 10, 26, 2, 0),  # 03:00 CET
    ]
    assert newest_due(s, utc(2025, 10, 26, 0, 40), utc(2025, 10, 26, 1, 10)) == utc(2025, 10, 26, 1, 0)


def test_the_southern_hemisphere_changes_the_other_way_round() -> None:
    s = spec("30 2 * * *", "Australia/Sydney")
    # Clocks go back 03:00 -> 02:00 on 2025-04-06 and forward 02:00 -> 03:00 on 2025-10-05.
    assert due_between(s, utc(2025, 4, 4, 12), utc(2025, 4, 6, 12)) == [
        utc(2025, 4, 4, 15, 30),  # 02:30 AEDT (+11)
        utc(2025, 4, 5, 15, 30),  # 02:30 AEDT, the first of two; not again at AEST
    ]
    assert due_between(s, utc(2025, 10, 3, 12), utc(2025, 10, 5, 12)) == [
        utc(2025, 10, 3, 16, 30),  # 02:30 AEST (+10)
        utc(2025, 10, 4, 16, 30),  # 02:30 does not exist: 03:30 AEDT
    ]


def test_a_half_hour_daylight_saving_shift_is_handled() -> None:
    s = spec("15 2 * * *", "Australia/Lord_Howe")  # +10:30 <-> +11, at 02:00 local
    assert due_between(s, utc(2025, 10, 4, 12), utc(2025, 10, 5, 12)) == [
        utc(2025, 10, 4, 15, 45),  # 02:15 would be in the 30-minute gap: 02:45 (+11)
    ]


def test_newest_due_after_an_outage_across_a_change_agrees_with_stepping() -> None:
    s = spec("*/20 * * * *", "America/New_York")
    after, until = utc(2025, 11, 2, 4), utc(2025, 11, 2, 7, 10)  # 00:00 EDT .. 02:10 EST
    assert newest_due(s, after, until) == due_between(s, after, until)[-1] == utc(2025, 11, 2, 7)


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata"]
EXPRESSIONS = ["* * * * *", "*/7 * * * *", "30 2 * * *", "0 */3 * * *", "15,45 1-3 * * *", "0 2 * * 0"]


@settings(max_examples=40, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    expression=st.sampled_from(EXPRESSIONS),
    start=st.datetimes(min_value=datetime(2025, 3, 25), max_value=datetime(2025, 11, 5)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    minutes=st.integers(min_value=0, max_value=600),
)
def test_newest_due_is_the_last_of_the_stepped_due_times(
    zone: str, expression: str, start: datetime, minutes: int
) -> None:
    s = spec(expression, zone)
    until = start + timedelta(minutes=minutes, seconds=30)
    stepped = due_between(s, start, until)
    assert stepped == sorted(set(stepped))
    assert all(d.second == 0 and d.microsecond == 0 for d in stepped)
    assert newest_due(s, start, until) == (stepped[-1] if stepped else None)


@pytest.mark.parametrize(
    "expression", ["5-1 * * * *", "0 22-2 * * *", "0 0 * dec-jan *", "0 0 * * fri-mon", "1-59,30-10/2 * * * *"]
)
def test_a_backwards_range_is_refused_like_crontab_does(expression: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="runs backwards"):
        spec(expression)


@pytest.mark.parametrize("expression", ["1-5 * * * *", "0 2-22/4 * * *", "0 0 * jan-dec mon-fri", "*/5 * * * *"])
def test_forward_ranges_and_steps_are_accepted(expression: str) -> None:
    assert spec(expression).expression == expression


def test_fields_are_ascii_so_a_fullwidth_digit_is_no_three() -> None:
    with pytest.raises(errors.InvalidArgument, match="ASCII"):
        spec("\uff13 * * * *")


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "posix/Europe/Berlin"])
def test_a_zone_that_is_this_servers_clock_or_a_file_alias_is_refused(zone: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="unknown time zone"):
        spec("0 2 * * *", zone)
