"""The tick loop: due schedule minutes become queued runs; stuck runs are cleaned up.

Every replica ticks (every second by default) and nothing is decided in memory:

1. Due runs. Schedules whose `next_due_at` has passed are read *outside* any lock, and
   for each the newest due minute in (`last_evaluated_at`, now] becomes a run with
   `INSERT ... ON CONFLICT (schedule_name, due_at) DO NOTHING`. When two replicas read
   the same schedule at once, both insert and the unique key lets exactly one row (and
   one event) through. Then the schedule's cursor moves forward, never back.
2. Housekeeping. A dispatched run that no update acknowledged within
   `DISPATCH_ACK_SECONDS` goes back to the queue (its collector vanished right after the
   claim); a running run past its deadline plus `DEADLINE_GRACE_SECONDS` is timed out.
   Each is a conditional update, so replicas doing the same sweep change a run once.

A tick looks for work in one read transaction and takes the event lock only if it found some.
`tick()` is public so tests drive it with an injected clock; `run()` is the live loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from services.scheduler import metrics
from services.scheduler.clock import Clock, utc_now
from services.scheduler.domain import cron
from services.scheduler.domain import job_runs as rules
from services.scheduler.domain import schedules as schedule_rules
from services.scheduler.domain.job_runs import JobRun, JobState, Trigger
from services.scheduler.domain.schedules import Schedule
from services.scheduler.store.queries import SchedulerStore
from services.scheduler.watch import WatchHub

log = structlog.get_logger(__name__)

MAX_RETRY_SECONDS = 10.0
MAX_MISSED_COUNT = 1000
"""Counting missed minutes stops here: after a long outage the exact number matters less."""


@dataclass(frozen=True)
class TickReport:
    """What one tick changed (tests and logs read it)."""

    created: tuple[JobRun, ...] = ()
    requeued: tuple[JobRun, ...] = ()
    timed_out: tuple[JobRun, ...] = ()


class Ticker:
    def __init__(self, store: SchedulerStore, hub: WatchHub, clock: Clock = utc_now) -> None:
        self._store = store
        self._hub = hub
        self._now = clock

    async def run(self, interval: float) -> None:
        """Tick every `interval` seconds until cancelled.

        A failed tick (database unreachable, say) is logged and retried with a doubling
        pause of at most `MAX_RETRY_SECONDS`. The next good tick evaluates each schedule
        from its stored cursor (`domain.schedules` says what a long gap means).
        """
        failures = 0
        while True:
            started = time.perf_counter()
            try:
                await self.tick()
            except Exception as exc:
                failures += 1
                log.warning("tick_failed", error=str(exc), error_type=type(exc).__name__, failures=failures)
            else:
                failures = 0
            elapsed = time.perf_counter() - started
            metrics.TICK_SECONDS.observe(elapsed)
            pause = interval if not failures else min(interval * 2**failures, MAX_RETRY_SECONDS)
            await asyncio.sleep(max(pause - elapsed, 0.0))

    async def tick(self) -> TickReport:
        """One pass at the clock's current time: a read, then writes only if there is work."""
        now = self._now()
        async with self._store.read() as tx:
            due = await tx.due_schedules(now)
            expired = await tx.expired_dispatches(now - timedelta(seconds=rules.DISPATCH_ACK_SECONDS))
            overdue = await tx.overdue_runs(now - timedelta(seconds=rules.DEADLINE_GRACE_SECONDS))
        created = await self._create_due_runs(due, now) if due else ()
        requeued, timed_out = await self._housekeep(expired, overdue, now) if expired or overdue else ((), ())
        return TickReport(created, requeued, timed_out)

    async def _create_due_runs(self, due: list[Schedule], now: datetime) -> tuple[JobRun, ...]:
        evaluations = _evaluate(due, now)
        due = [s for s in due if s.name in evaluations]
        if not due:
            return ()
        async with self._store.write(exclusive=True) as tx:
            live = await tx.enabled_schedule_names(evaluations)  # not deleted or disabled since we read
            discoveries = await tx.discoveries_named(s.discovery for s in due)
            candidates = [
                rules.new_run(
                    discoveries[s.discovery],
                    trigger=Trigger.SCHEDULE,
                    due_at=due_at,
                    now=now,
                    schedule=s.name,
                    reason=f"due at {due_at:%Y-%m-%d %H:%M} UTC",
                )
                for s in due
                if s.name in live and s.discovery in discoveries and (due_at := evaluations[s.name].due_at) is not None
            ]
            inserted = await tx.insert_due_runs(candidates)  # the unique key decides between replicas
            created = [run for run in candidates if run.id in inserted]
            revision = await tx.append_run_events([run.id for run in created], now)
            await tx.record_evaluations([e for name, e in evaluations.items() if name in live])
        self._hub.notify(revision)
        if len(created) < len(candidates):
            log.debug("due_runs_created_elsewhere", runs=len(candidates) - len(created))
        by_name = {s.name: s for s in due}
        for run in created:
            metrics.JOB_RUNS_CREATED.labels(Trigger.SCHEDULE.value).inc()
            log.info(
                "job_run_created",
                job_run_id=run.id,
                discovery=run.discovery,
                schedule=run.schedule,
                trigger="schedule",
                due_at=run.due_at.isoformat(),
                revision=revision,
            )
            schedule = by_name[run.schedule or ""]
            missed = _missed_minutes(schedule, run.due_at)
            if missed:
                metrics.DUE_RUNS_MISSED.inc(missed)
                log.warning(
                    "due_runs_missed",
                    schedule=schedule.name,
                    missed=missed,
                    since=schedule.last_evaluated_at.isoformat() if schedule.last_evaluated_at else None,
                    advice="no scheduler replica was ticking; only the newest due minute was queued",
                )
        return tuple(created)

    async def _housekeep(
        self, expired: list[JobRun], overdue: list[JobRun], now: datetime
    ) -> tuple[tuple[JobRun, ...], tuple[JobRun, ...]]:
        requeued: list[tuple[JobRun, JobRun]] = []
        timed_out: list[JobRun] = []
        async with self._store.write(exclusive=True) as tx:
            for run in expired:
                if rules.dispatch_expired(run, now):
                    changed = rules.requeue(run)
                    if await tx.save_run(changed, expected=run):
                        requeued.append((run, changed))
            for run in overdue:
                if rules.deadline_passed(run, now):
                    changed = rules.time_out(run, now)
                    if await tx.save_run(changed, expected=run):
                        timed_out.append(changed)
            changed_ids = [run.id for _, run in requeued] + [run.id for run in timed_out]
            revision = await tx.append_run_events(changed_ids, now)
        self._hub.notify(revision)
        for was, run in requeued:
            log.warning("job_run_requeued", job_run_id=run.id, collector=was.collector, reason=run.reason)
        for run in timed_out:
            metrics.JOB_RUNS_FINISHED.labels(JobState.TIMED_OUT.value).inc()
            log.warning("job_run_timed_out", job_run_id=run.id, collector=run.collector, reason=run.reason)
        return tuple(changed for _, changed in requeued), tuple(timed_out)


def _evaluate(due: list[Schedule], now: datetime) -> dict[str, schedule_rules.Evaluation]:
    """Each due schedule's decision, leaving out any that cannot be evaluated.

    A schedule whose zone vanished from the tz database (say) is logged and skipped
    rather than stopping every other schedule's runs.
    """
    evaluations = {}
    for schedule in due:
        try:
            evaluations[schedule.name] = schedule_rules.plan_evaluation(schedule, now)
        except Exception as exc:
            log.warning("schedule_evaluation_failed", schedule=schedule.name, error=str(exc))
    return evaluations


def _missed_minutes(schedule: Schedule, newest: datetime) -> int:
    """How many due minutes before the newest one fell in the window (counted, not queued)."""
    if schedule.last_evaluated_at is None:
        return 0
    count = 0
    after = schedule.last_evaluated_at
    while count < MAX_MISSED_COUNT:
        following = cron.next_due(schedule.cron, after)
        if following is None or following >= newest:
            break
        count += 1
        after = following
    return count
