"""Leases on dispatched and running runs: who still holds a run, and what happens when nobody does.

A claim leases a run to one collector instance for `LeasePolicy.seconds` (ADR 0010). The
holder keeps it by being heard from: each of its job updates renews the lease, and so
does each `RenewLeases` hold its gateway sends for the runs the collector lists in its
heartbeat. Nothing else does; in particular the scheduler never asks anyone.

When a lease has expired, the ticker takes the run back: to `queued`, so that any
collector of its target (or the same one after a restart) takes it as the next attempt,
or to `failed` once `max_attempts` attempts have expired. The run keeps its attempt
count; only a claim raises it. The reason names the collector that stopped renewing and
the attempt it had, which is what an operator needs to start looking.

A renewal that finds the run final, queued again or handed to another collector is
*lost*: the gateway tells that collector to stop (`LostLease`), since its work no longer
counts. The reasons here say which of these it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.scheduler.domain.job_runs import ACTIVE_STATES, JobRun, JobState

DEFAULT_LEASE_SECONDS = 90
"""Three default heartbeat intervals: one lost heartbeat does not cost a run."""
DEFAULT_MAX_ATTEMPTS = 3
MAX_LEASE_SECONDS = 24 * 3600
MAX_ATTEMPTS_LIMIT = 100


@dataclass(frozen=True)
class LeasePolicy:
    seconds: int = DEFAULT_LEASE_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def expires_at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class LeaseHold:
    """A collector instance says, through its gateway, that it is running this run."""

    job_run_id: str
    collector_instance_uid: str


@dataclass(frozen=True)
class LostLease:
    """A hold that was not renewed, and why; the gateway stops the collector's run."""

    job_run_id: str
    collector_instance_uid: str
    reason: str


def lease_expired(run: JobRun, now: datetime) -> bool:
    """A dispatched or running run nobody renewed in time."""
    return run.state in ACTIVE_STATES and run.lease_expires_at is not None and run.lease_expires_at <= now


def expire_lease(run: JobRun, now: datetime, *, max_attempts: int) -> JobRun:
    """The run after its holder's lease expired: queued for the next attempt, or failed.

    Requeuing clears who had the run and what that attempt had done (its counters and
    start describe an attempt that will not finish); the attempt count stays, so the next
    claim makes it attempt + 1 and its batches get identities of their own.
    """
    who = f"collector '{run.collector}'" if run.collector else "its collector"
    stopped = f"{who} stopped renewing the lease of attempt {run.attempt}"
    if run.attempt >= max_attempts:
        return replace(
            run,
            state=JobState.FAILED,
            finished_at=now,
            lease_expires_at=None,
            reason=f"{stopped}; giving up after {run.attempt} attempts (--max-attempts {max_attempts})",
        )
    return replace(
        run,
        state=JobState.QUEUED,
        collector="",
        collector_instance_uid="",
        gateway_id="",
        dispatched_at=None,
        started_at=None,
        deadline_at=None,
        lease_expires_at=None,
        targets_done=0,
        targets_total=0,
        devices_found=0,
        batches_sent=0,
        reason=f"{stopped}; queued for attempt {run.attempt + 1} of {max_attempts}",
    )


def lost_lease(hold: LeaseHold, run: JobRun | None) -> LostLease | None:
    """Why `hold` was not renewed, or None when the run is (again) this holder's.

    None covers a race the caller cannot see: the run was queued and claimed again by the
    same instance between the renewal and this look, so it holds a fresh lease.
    """
    if run is None:
        return LostLease(hold.job_run_id, hold.collector_instance_uid, f"no job run with id '{hold.job_run_id}'")
    if run.state.final:
        why = f"job run {run.id} already finished ({run.state})"
        return LostLease(run.id, hold.collector_instance_uid, f"{why}: {run.reason}" if run.reason else why)
    if run.state is JobState.QUEUED:
        # A queued run with attempts behind it is there because a lease expired; its
        # reason says whose. One without was never handed out: the hold is a mistake.
        why = f"job run {run.id} is queued again: {run.reason}" if run.attempt else f"job run {run.id} is queued"
        return LostLease(run.id, hold.collector_instance_uid, why)
    if run.collector_instance_uid == hold.collector_instance_uid:
        return None
    return LostLease(
        run.id,
        hold.collector_instance_uid,
        f"job run {run.id} is attempt {run.attempt} on collector '{run.collector}' ({run.collector_instance_uid})",
    )
