"""Handing queued runs to a collector: the missed-run policy, capacity, and the change feed.

A gateway claims on behalf of one collector (by name, with its zone). Its candidates are
the queued runs aimed at it: by name, or at its zone. Before any is handed out:

1. Missed runs. A scheduled run whose due minute is older than the *missed threshold*
   fell due while the collector was away (or disabled: the reason the run last waited
   for, `domain.waiting`, says which). The threshold is the polling interval plus a
   minute (`collector_check_minutes * 60 + 60` s), so a collector that polls every five
   minutes is not "missing" the runs it picks up on its normal poll. Per schedule:
   `skip` cancels all of its missed runs; `run_once` keeps only its newest queued run
   and cancels the missed ones older than it. Manual runs are never missed, and neither
   are retries (a run back in the queue after its lease expired, `attempt` >= 1): its
   due minute was honoured when it was first claimed, however long ago that is now.
2. Capacity. A collector runs `limit` runs at a time (one by default); the runs it
   already has dispatched or running count against it.
3. The oldest remaining candidates (by due minute) are claimed, each with a conditional
   update on `state = 'queued'`, so two gateways claiming for two collectors of one zone
   never both get the same run.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scheduler.domain.job_runs import JobRun, Trigger
from services.scheduler.domain.schedules import MissedRunPolicy
from services.scheduler.domain.settings import Settings
from services.scheduler.domain.waiting import WaitingCause

MISSED_WHILE_OFFLINE = "missed: collector was offline when it fell due"
MISSED_WHILE_DISABLED = "missed: collector was disabled when it fell due"
SUPERSEDED_BY_MISSED = "superseded by a newer missed run"
SUPERSEDED_BY_NEWER = "superseded by a newer run"
DEFAULT_CLAIM_LIMIT = 1
MAX_CLAIM_LIMIT = 100


class EventKind(enum.StrEnum):
    JOB_RUN = "job_run"
    SETTINGS = "settings"
    BOOKMARK = "bookmark"
    """Never stored: a watch marker carrying the newest revision the watcher has seen."""


@dataclass(frozen=True)
class DispatchEvent:
    """One entry of the change feed, with the run's (or the settings') *current* state."""

    revision: int
    kind: EventKind
    job_run: JobRun | None = None
    settings: Settings | None = None


@dataclass(frozen=True)
class MissedRun:
    run: JobRun
    reason: str


def missed_threshold(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.collector_check_minutes * 60 + 60)


def plan_missed_runs(
    candidates: Sequence[JobRun],
    policies: Mapping[str, MissedRunPolicy],
    *,
    now: datetime,
    threshold: timedelta,
) -> list[MissedRun]:
    """The candidates to cancel before claiming, each with its reason.

    A schedule deleted meanwhile (no policy known) is treated as `run_once`. Manual runs
    and retries (attempt >= 1) are never missed.
    """
    by_schedule: dict[str, list[JobRun]] = defaultdict(list)
    for run in candidates:
        if run.trigger is Trigger.SCHEDULE and run.schedule and run.attempt == 0:
            by_schedule[run.schedule].append(run)
    cutoff = now - threshold
    cancelled: list[MissedRun] = []
    for schedule, runs in by_schedule.items():
        missed = [r for r in runs if r.due_at < cutoff]
        if not missed:
            continue
        policy = policies.get(schedule, MissedRunPolicy.RUN_ONCE)
        if policy is MissedRunPolicy.SKIP:
            cancelled += [MissedRun(r, missed_reason(r)) for r in missed]
            continue
        newest = max(runs, key=_age_key)
        reason = SUPERSEDED_BY_MISSED if newest.due_at < cutoff else SUPERSEDED_BY_NEWER
        cancelled += [MissedRun(r, reason) for r in missed if r.id != newest.id]
    return sorted(cancelled, key=lambda m: _age_key(m.run))


def missed_reason(run: JobRun) -> str:
    """Why a run missed its minute: what held it back while it waited (`domain.waiting`)."""
    if run.waiting_cause in (WaitingCause.DISABLED, WaitingCause.ZONE_DISABLED):
        return MISSED_WHILE_DISABLED
    return MISSED_WHILE_OFFLINE


def claim_limit(requested: int) -> int:
    """0 means the default (one run at a time); larger asks are capped."""
    if requested <= 0:
        return DEFAULT_CLAIM_LIMIT
    return min(requested, MAX_CLAIM_LIMIT)


def runs_to_claim(candidates: Sequence[JobRun], *, cancelled: set[str], active: int, limit: int) -> list[JobRun]:
    """The oldest candidates that fit beside the `active` runs the collector already has."""
    room = limit - active
    if room <= 0:
        return []
    remaining = sorted((r for r in candidates if r.id not in cancelled), key=_age_key)
    return remaining[:room]


def _age_key(run: JobRun) -> tuple[datetime, datetime, str]:
    return (run.due_at, run.created_at, run.id)
