"""Schedules: when a discovery runs, and what happens to runs its collector missed.

A schedule is five cron fields read in an IANA time zone (`domain.cron`). The tick loop
creates one job run per due minute. Its evaluation cursor (`last_evaluated_at`) starts at
the schedule's creation, or at the moment it is enabled again, so nothing is back-filled.

`plan_evaluation` is the tick's decision for one schedule: the newest due minute in
(`last_evaluated_at`, `now`], and the next one. Only the newest: when several minutes
fell due since the last evaluation, no replica was ticking for that long (an outage of
the scheduler itself); the older minutes are missed and nothing is recorded for them,
because queueing a backlog of identical scans for one collector helps nobody.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from outpost import errors
from services.scheduler.domain import cron
from services.scheduler.domain.discoveries import validate_name


class MissedRunPolicy(enum.StrEnum):
    """What a returning collector does with scheduled runs that fell due while it was away."""

    SKIP = "skip"
    RUN_ONCE = "run_once"


@dataclass(frozen=True)
class Schedule:
    name: str
    discovery: str
    cron: cron.CronSpec
    enabled: bool = True
    missed_run_policy: MissedRunPolicy = MissedRunPolicy.RUN_ONCE
    created_at: datetime | None = field(default=None, compare=False)
    last_evaluated_at: datetime | None = None
    next_due_at: datetime | None = None
    last_due_at: datetime | None = None


@dataclass(frozen=True)
class Evaluation:
    """The tick's decision for one schedule at `evaluated_at`."""

    schedule: str
    evaluated_at: datetime
    due_at: datetime | None
    next_due_at: datetime | None


def new_schedule(
    *,
    name: str,
    discovery: str,
    minute: str,
    hour: str,
    day_of_month: str,
    month: str,
    day_of_week: str,
    timezone: str,
    enabled: bool,
    missed_run_policy: MissedRunPolicy | None,
    now: datetime,
) -> Schedule:
    """A valid schedule that starts evaluating at `now` (no back-fill)."""
    spec = cron.parse_cron(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month=month,
        day_of_week=day_of_week,
        timezone=timezone,
        now=now,
    )
    return Schedule(
        name=validate_name("schedule", name),
        discovery=validate_name("discovery", discovery),
        cron=spec,
        enabled=enabled,
        missed_run_policy=missed_run_policy or MissedRunPolicy.RUN_ONCE,
        created_at=now,
        last_evaluated_at=now,
        next_due_at=cron.next_due(spec, now) if enabled else None,
    )


def set_enabled(schedule: Schedule, enabled: bool, now: datetime) -> Schedule | None:
    """Enabling restarts evaluation at `now` (the disabled time is not back-filled)."""
    if schedule.enabled == enabled:
        return None
    if not enabled:
        return replace(schedule, enabled=False, next_due_at=None)
    return replace(schedule, enabled=True, last_evaluated_at=now, next_due_at=cron.next_due(schedule.cron, now))


def plan_evaluation(schedule: Schedule, now: datetime) -> Evaluation:
    """The newest due minute in (last_evaluated_at, now], and the next one after `now`.

    The usual case costs one (memoised) cron step: the stored `next_due_at` fell due and
    the minute after it has not, so it is the newest due minute and that one is next.
    """
    after = schedule.last_evaluated_at or now
    due = schedule.next_due_at
    if due is not None and after < due <= now:
        following = cron.next_due(schedule.cron, due)
        if following is None or following > now:
            return Evaluation(schedule=schedule.name, evaluated_at=now, due_at=due, next_due_at=following)
    return Evaluation(
        schedule=schedule.name,
        evaluated_at=now,
        due_at=cron.newest_due(schedule.cron, after, now),
        next_due_at=cron.next_due(schedule.cron, now),
    )


def not_found(name: str) -> errors.NotFound:
    return errors.NotFound(f"no schedule named '{name}'; `outpostctl schedules list` shows them")
