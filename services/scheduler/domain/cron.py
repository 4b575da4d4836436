"""When a schedule falls due: five cron fields read as wall-clock time in an IANA zone.

`croniter` does the calendar arithmetic on *naive* wall-clock times, where there is no
daylight saving time; this module maps each wall-clock match to the UTC instant(s) at
which clocks in the zone show it. Only that mapping is ours, and it follows what
operators know from Vixie/ISC cron:

- A wall-clock time that happens twice (autumn: clocks go back) runs once, at its first
  occurrence, when the schedule names fixed times (neither the minute nor the hour field
  starts with `*`): "30 2 * * *" runs once that night. A *wildcard* schedule ("*/15 * * *
  *", "0 * * * *") runs at every occurrence: it means "every so often", and the repeated
  hour is real elapsed time.
- A wall-clock time that never happens (spring: clocks go forward) runs, for a fixed-time
  schedule, as if the clocks had not changed yet: "30 2 * * *" runs at 03:30 new time,
  the same elapsed time after midnight. A wildcard schedule skips the minutes that do
  not exist and carries on with the new time.

Every due time is a whole minute in UTC (all of today's zone offsets are whole minutes).

Around an offset change the mapping is not monotonic (02:30 shifted to 03:30 comes after
a naive 03:15), so near one the search looks `MAX_SHIFT` further either way; elsewhere
one or two `croniter` steps decide.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter  # type: ignore[import-untyped]

from outpost import errors

MAX_SHIFT = timedelta(hours=3)
"""Wider than any offset change in the tz database since 1970 (Antarctica/Troll: 2 h)."""

MAX_FIELD_CHARS = 128
_ZERO = timedelta(0)
_NO_TIME = datetime.min


@dataclass(frozen=True)
class CronSpec:
    """A validated cron expression and the zone its wall-clock times are read in."""

    minute: str
    hour: str
    day_of_month: str
    month: str
    day_of_week: str
    timezone: str

    @property
    def expression(self) -> str:
        return f"{self.minute} {self.hour} {self.day_of_month} {self.month} {self.day_of_week}"

    @property
    def fixed_time(self) -> bool:
        """Vixie cron's rule: a job is "wildcard" if its minute or hour field starts with '*'."""
        return not (self.minute.startswith("*") or self.hour.startswith("*"))

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def parse_cron(
    *, minute: str, hour: str, day_of_month: str, month: str, day_of_week: str, timezone: str, now: datetime
) -> CronSpec:
    """Validate the five fields (empty means `*`) and the zone (empty means UTC).

    Raises `InvalidArgument` with croniter's own message for a bad expression, and for an
    expression that never falls due ("0 0 31 2 *").
    """
    fields = {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month": month,
        "day_of_week": day_of_week,
    }
    cleaned: dict[str, str] = {}
    for name, given in fields.items():
        value = given.strip() or "*"
        if len(value) > MAX_FIELD_CHARS or any(c.isspace() for c in value):
            raise errors.InvalidArgument(f"cron field {name} must be one field without spaces, got {value!r}")
        if not value.isascii():
            raise errors.InvalidArgument(f"cron field {name} must be ASCII (digits 0-9, names, * , - /), got {value!r}")
        problem = _backwards_range(name, value)
        if problem:
            raise errors.InvalidArgument(problem)
        cleaned[name] = value
    spec = CronSpec(**cleaned, timezone=timezone.strip() or "UTC")
    try:
        croniter(spec.expression, datetime(2000, 1, 1))
    except (CroniterError, TypeError) as exc:
        raise errors.InvalidArgument(f"invalid cron expression {spec.expression!r}: {exc}") from None
    try:
        if spec.timezone not in _iana_zones():
            raise ValueError(spec.timezone)  # "localtime", file paths: not a zone name
        spec.zone  # noqa: B018 - resolving the zone is the check
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.InvalidArgument(
            f"unknown time zone {spec.timezone!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None
    if next_due(spec, now) is None:
        raise errors.InvalidArgument(f"cron expression {spec.expression!r} never falls due")
    return spec


_NAMES = {
    "month": {
        m: i
        for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
    },
    "day_of_week": {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}


def _backwards_range(name: str, value: str) -> str | None:
    """Why a range in `value` runs backwards ("5-1"), or None.

    crontab(5) refuses such a range; croniter wraps it around (`5-1` would run at every
    minute but :02-:04), which is never what was meant.
    """
    names = _NAMES.get(name, {})
    for part in value.split(","):
        low, dash, high = part.split("/", 1)[0].partition("-")
        if not dash:
            continue
        bounds = [int(b) if b.isdigit() else names.get(b.lower()) for b in (low, high)]
        if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            return (
                f"cron field {name} range {part!r} runs backwards; crontab(5) refuses it: "
                f"list both parts instead (e.g. '{low}-<max>,<min>-{high}')"
            )
    return None


_NOT_ZONE_NAMES = frozenset({"localtime", "posixrules", "Factory"})
"""Files in the zone database directory that are not zones one can name: `localtime` is
whatever this server's clock says, which a schedule must not silently depend on."""


@functools.cache
def _iana_zones() -> frozenset[str]:
    return frozenset(
        z for z in zoneinfo.available_timezones() if z not in _NOT_ZONE_NAMES and not z.startswith(("posix/", "right/"))
    )


@functools.lru_cache(maxsize=4096)
def next_due(spec: CronSpec, after: datetime) -> datetime | None:
    """The first due instant strictly after `after` (UTC), or None if there is none.

    Memoised (a pure function of two hashable values, ~0.5 ms of croniter a call): when
    1,000 schedules fall due in one minute, most share an expression and the minute.
    """
    zone = spec.zone
    start = _wall(after, zone) - (MAX_SHIFT if _near_change(zone, after) else _ZERO)
    best: datetime | None = None
    horizon = datetime.max
    for wall in _matches(spec, start, forward=True):
        if wall > horizon:
            break
        for instant in _instants(spec, wall):
            if instant > after and (best is None or instant < best):
                best = instant
                if horizon == datetime.max:
                    horizon = wall + (MAX_SHIFT if _near_change(zone, instant) else _ZERO)
    return best


def newest_due(spec: CronSpec, after: datetime, until: datetime) -> datetime | None:
    """The newest due instant in (`after`, `until`] (UTC), or None if none fell due."""
    zone = spec.zone
    if until <= after:
        return None
    # Whole seconds past the top: croniter steps strictly before its start.
    start = _wall(until, zone) + (MAX_SHIFT if _near_change(zone, until) else _ZERO) + timedelta(seconds=1)
    floor = _wall(after, zone) - (MAX_SHIFT if _near_change(zone, after) else _ZERO)
    best: datetime | None = None
    horizon = _NO_TIME
    for wall in _matches(spec, start, forward=False):
        if wall < horizon or wall < floor:
            break
        for instant in _instants(spec, wall):
            if after < instant <= until and (best is None or instant > best):
                best = instant
                if horizon == _NO_TIME:
                    horizon = wall - (MAX_SHIFT if _near_change(zone, instant) else _ZERO)
    return best


def _matches(spec: CronSpec, start: datetime, *, forward: bool) -> Iterator[datetime]:
    """Naive wall-clock matches after (or before) `start`, nearest first; ends if none is left."""
    it = croniter(spec.expression, start.replace(microsecond=0), ret_type=datetime)
    while True:
        try:
            found: datetime = it.get_next(datetime) if forward else it.get_prev(datetime)
        except CroniterBadDateError:
            return
        yield found


def _instants(spec: CronSpec, wall: datetime) -> list[datetime]:
    """The UTC instants at which clocks in the zone show `wall` and the schedule runs."""
    zone = spec.zone
    first = wall.replace(tzinfo=zone, fold=0).utcoffset() or _ZERO
    second = wall.replace(tzinfo=zone, fold=1).utcoffset() or _ZERO
    if first == second:
        return [_utc(wall - first)]
    if first > second:  # shown twice: clocks went back
        both = [_utc(wall - first), _utc(wall - second)]
        return both[:1] if spec.fixed_time else both
    # Never shown: clocks went forward. fold=0 reads it with the offset before the change.
    return [_utc(wall - first)] if spec.fixed_time else []


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _near_change(zone: ZoneInfo, instant: datetime) -> bool:
    offsets = {(instant + delta).astimezone(zone).utcoffset() for delta in (-MAX_SHIFT, _ZERO, MAX_SHIFT)}
    return len(offsets) > 1


def _utc(naive: datetime) -> datetime:
    return naive.replace(tzinfo=UTC)
