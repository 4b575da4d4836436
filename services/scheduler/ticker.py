"""The tick loop: due schedule minutes become queued runs; stuck runs are cleaned up.

Every replica ticks (every second by default) and nothing is decided in memory:

1. Due runs. Schedules whose `next_due_at` has passed are read *outside* any lock, and
   for each the newest due minute in (`last_evaluated_at`, now] becomes a run with
   `INSERT ... ON CONFLICT (schedule_name, due_at) DO NOTHING`. When two replicas read
   the same schedule at once, both insert and the unique key lets exactly one row (and
   one event) through. Then the schedule's cursor moves forward, never back.
2. Housekeeping. A running run past its deadline plus `DEADLINE_GRACE_SECONDS` is timed
   out. A dispatched or running run whose lease expired goes back to the queue with an
   event (so gateways wake the collectors of its target to claim it as the next attempt),
   or is failed after `max_attempts` (`domain.leases`). Each is a conditional update on
   the state, holder and attempt read, and the lease must still be expired when it is
   written, so replicas doing the same sweep change a run once and a renewal that
   committed meanwhile wins.

Leases are only swept once this ticker has been healthy for a whole lease: after its
start, and after a failed tick. While the database or this service was unreachable,
gateways could not renew, and a lease that expired then says nothing about its
collector; holders renew within one heartbeat of the service being back.

A tick looks for work in one read transaction and takes the event lock only if it found some.
The same read finds the soonest minute still ahead, and the loop wakes at that minute if
it comes before the next interval (ADR 0033): a run is created as its minute begins, not
up to a whole interval after it.
`tick()` is public so tests drive it with an injected clock; `run()` is the live loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from outpost.backoff import Backoff
from services.scheduler import metrics
from services.scheduler.clock import Clock, utc_now
from services.scheduler.domain import cron
from services.scheduler.domain import job_runs as rules
from services.scheduler.domain import leases as lease_rules
from services.scheduler.domain import schedules as schedule_rules
from services.scheduler.domain.job_runs import JobRun, JobState, Trigger
from services.scheduler.domain.leases import LeasePolicy
from services.scheduler.domain.schedules import Schedule
from services.scheduler.store.queries import SchedulerStore, Transaction
from services.scheduler.watch import WatchHub

log = structlog.get_logger(__name__)

MAX_RETRY_SECONDS = 10.0
MAX_MISSED_COUNT = 1000
"""Counting missed minutes stops here: after a long outage the exact number matters less."""
ALIGN_SLACK_SECONDS = 0.002
"""Woken for a due minute, the loop sleeps this much past it, so the clock has reached it."""
EXPIRED_PER_TICK = 500
"""Expired leases taken back per tick; more wait for the next tick (one short event-lock hold)."""


@dataclass(frozen=True)
class TickReport:
    """What one tick changed (tests and logs read it)."""

    created: tuple[JobRun, ...] = ()
    requeued: tuple[JobRun, ...] = ()
    """Runs whose lease expired, back in the queue for their next attempt."""
    timed_out: tuple[JobRun, ...] = ()
    failed: tuple[JobRun, ...] = ()
    """Runs whose lease expired on their last allowed attempt."""


class Ticker:
    def __init__(
        self,
        store: SchedulerStore,
        hub: WatchHub,
        clock: Clock = utc_now,
        leases: LeasePolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._hub = hub
        self._now = clock
        self._leases = leases or LeasePolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        self._sweep_leases_from = self._lease_grace_end()
        self._soonest: datetime | None = None

    async def run(self, interval: float) -> None:
        """Tick every `interval` seconds until cancelled.

        A failed tick (database unreachable, say) is logged and retried after a capped
        full-jitter backoff (`outpost.backoff`: a window starting at two intervals and
        doubling up to `MAX_RETRY_SECONDS`, so replicas that failed together do not retry
        together), but never sooner than one interval; a good tick resets it. The next
        good tick evaluates each schedule from its stored cursor (`domain.schedules` says
        what a long gap means). The loop outlives any number of failures.
        """
        backoff = Backoff(min(2 * interval, MAX_RETRY_SECONDS), MAX_RETRY_SECONDS, self._rng)
        failures = 0
        while True:
            started = time.perf_counter()
            try:
                await self.tick()
            except Exception as exc:
                failures += 1
                self._sweep_leases_from = self._lease_grace_end()
                log.warning("tick_failed", error=str(exc), error_type=type(exc).__name__, failures=failures)
            else:
                failures = 0
                backoff.reset()
            elapsed = time.perf_counter() - started
            metrics.TICK_SECONDS.observe(elapsed)
            pause = interval if not failures else max(interval, backoff.next_delay())
            wait = max(pause - elapsed, 0.0)
            if not failures and self._soonest is not None:
                until = (self._soonest - self._now()).total_seconds()
                wait = min(wait, max(until, 0.0) + ALIGN_SLACK_SECONDS)
            await self._sleep(wait)

    async def tick(self) -> TickReport:
        """One pass at the clock's current time: a read, then writes only if there is work."""
        now = self._now()
        async with self._store.read() as tx:
            due = await tx.due_schedules(now)
            overdue = await tx.overdue_runs(now - timedelta(seconds=rules.DEADLINE_GRACE_SECONDS))
            expired = await tx.expired_leases(now, EXPIRED_PER_TICK) if now >= self._sweep_leases_from else []
            self._soonest = await tx.soonest_due_after(now)
        created = await self._create_due_runs(due, now) if due else ()
        if not (overdue or expired):
            return TickReport(created)
        return replace(await self._housekeep(overdue, expired, now), created=created)

    def _lease_grace_end(self) -> datetime:
        return self._leases.expires_at(self._now())

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
            superseded = await _supersede_waiting_runs(tx, created, now)
            revision = await tx.append_run_events([run.id for run in (*created, *superseded)], now)
            await tx.record_evaluations([e for name, e in evaluations.items() if name in live])
        self._hub.notify(revision)
        if len(created) < len(candidates):
            log.debug("due_runs_created_elsewhere", runs=len(candidates) - len(created))
        if superseded:
            metrics.JOB_RUNS_SUPERSEDED.inc(len(superseded))
            log.warning(
                "waiting_runs_superseded",
                runs=len(superseded),
                schedules=sorted({r.schedule or "" for r in superseded}),
                advice="no collector claimed them; `outpostctl jobs list` shows which collector or zone they wait for",
            )
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

    async def _housekeep(self, overdue: list[JobRun], expired: list[JobRun], now: datetime) -> TickReport:
        """Time out overdue runs, then take back expired leases; one exclusive transaction.

        Time-outs go first: a run past its deadline is over, whatever its lease says.
        """
        timed_out: list[JobRun] = []
        taken_back: list[tuple[JobRun, JobRun]] = []
        async with self._store.write(exclusive=True) as tx:
            for run in overdue:
                if rules.deadline_passed(run, now):
                    changed = rules.time_out(run, now)
                    if await tx.save_run(changed, expected=run):
                        timed_out.append(changed)
            for run in expired:
                if lease_rules.lease_expired(run, now):
                    changed = lease_rules.expire_lease(run, now, max_attempts=self._leases.max_attempts)
                    if await tx.save_run(changed, expected=run, lease_expired_by=now):
                        taken_back.append((run, changed))
            revision = await tx.append_run_events([r.id for r in timed_out] + [r.id for _, r in taken_back], now)
        self._hub.notify(revision)
        for run in timed_out:
            metrics.JOB_RUNS_FINISHED.labels(JobState.TIMED_OUT.value).inc()
            log.warning("job_run_timed_out", job_run_id=run.id, collector=run.collector, reason=run.reason)
        for was, run in taken_back:
            outcome = "failed" if run.state is JobState.FAILED else "requeued"
            metrics.LEASES_EXPIRED.labels(outcome).inc()
            if run.state is JobState.FAILED:
                metrics.JOB_RUNS_FINISHED.labels(JobState.FAILED.value).inc()
            log.warning(
                "lease_expired",
                job_run_id=run.id,
                collector=was.collector,
                collector_instance_uid=was.collector_instance_uid,
                attempt=was.attempt,
                lease_expires_at=was.lease_expires_at.isoformat() if was.lease_expires_at else None,
                outcome=outcome,
                reason=run.reason,
                revision=revision,
            )
        return TickReport(
            requeued=tuple(r for _, r in taken_back if r.state is JobState.QUEUED),
            timed_out=tuple(timed_out),
            failed=tuple(r for _, r in taken_back if r.state is JobState.FAILED),
        )


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
    if schedule.last_evaluated_at is None or newest == schedule.next_due_at:
        return 0  # the first due minute after the last evaluation is the newest: none missed
    count = 0
    after = schedule.last_evaluated_at
    while count < MAX_MISSED_COUNT:
        following = cron.next_due(schedule.cron, after)
        if following is None or following >= newest:
            break
        count += 1
        after = following
    return count


SUPERSEDED_WHILE_WAITING = "superseded: never claimed before the schedule's next run fell due (missed-run policy skip)"


async def _supersede_waiting_runs(tx: Transaction, created: list[JobRun], now: datetime) -> list[JobRun]:
    """Cancel the runs a `skip` schedule still has waiting when its next one is created.

    A run nobody claims (its collector is removed, offline, or never existed) must not
    pile up one per due minute: under `skip` a schedule keeps at most one waiting run,
    the newest. Retries (attempt >= 1) keep their place: they hold work already begun.
    """
    schedules = {run.schedule for run in created if run.schedule}
    if not schedules:
        return []
    policies = await tx.missed_run_policies(schedules)
    newest = {run.schedule: run.id for run in created}
    superseded: list[JobRun] = []
    skipping = sorted(s for s in schedules if policies.get(s) is schedule_rules.MissedRunPolicy.SKIP)
    if not skipping:
        return []
    for schedule, waiting_runs in (await tx.queued_runs_of_schedules(skipping)).items():
        for waiting in waiting_runs:
            if waiting.id == newest[schedule] or waiting.attempt > 0:
                continue
            why = (
                f"{SUPERSEDED_WHILE_WAITING}; it waited because {waiting.waiting_reason}"
                if waiting.waiting_reason
                else ""
            )
            changed = rules.cancel_by_scheduler(waiting, why or SUPERSEDED_WHILE_WAITING, now)
            if await tx.save_run(changed, expected=waiting):
                superseded.append(changed)
    return superseded
