"""Job runs: one execution of a discovery, and every way its state may change.

    queued ──claim (attempt + 1, lease)───────────────────────────> dispatched
    dispatched ──RUNNING update───────────────────────────────────> running
    dispatched | running ──final update───────────────────────────> succeeded | failed | timed_out | cancelled
    dispatched | running ──lease expired, attempts left───────────> queued
    dispatched | running ──lease expired, none left───────────────> failed
    running ──deadline + 60 s passed──────────────────────────────> timed_out
    queued | dispatched | running ──cancel────────────────────────> cancelled
    queued ──missed while its collector was away──────────────────> cancelled

- A run is created `queued` (by its schedule's due minute, or by an admin now) with a
  snapshot of its discovery; later edits of the discovery do not change it.
- A claim hands it to one collector (`dispatched`) as the next *attempt* (1, 2, ...) with
  a *lease*: `lease_expires_at = now + lease_seconds`. The collector's first update moves
  it to `running` (or straight to a final state). Every update from the holder, and every
  `RenewLeases` hold its gateway sends from the collector's heartbeats, renews the lease.
- A dispatched or running run whose lease expired (its collector died, or its link did)
  goes back to `queued` for any collector of its target to take as the next attempt,
  keeping its attempt count; once `max_attempts` attempts have expired it is `failed`.
  `domain.leases` holds those rules.
- An update about an older attempt than the run's current one is refused: that attempt
  was superseded, and only the current one may change the run.
- A running run with no final update by its deadline plus `DEADLINE_GRACE_SECONDS` is
  `timed_out`.
- Cancelling is allowed until a run is final. A cancelled run stays cancelled: the
  collector's later updates are ignored, and the answer tells its gateway to stop it.
  Final states are final; an update for a run in one is ignored the same way.

A lease exists only while a run is dispatched or running: every change to any other state
clears `lease_expires_at`, so the ticker's sweep (`lease_expires_at <= now`) reads only
active runs.

The functions here decide; `dispatcher` and `ticker` read the run, call one, and write the
result with a conditional update on the state, holder and attempt they read (so a
concurrent change wins cleanly instead of being overwritten).
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from outpost import errors
from services.scheduler.domain.discoveries import Discovery

DEADLINE_GRACE_SECONDS = 60
"""A running run is timed out this long after its discovery's deadline."""
MAX_REASON_CHARS = 2000
ID_PREFIX = "jr_"

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED})
ACTIVE_STATES = frozenset({JobState.DISPATCHED, JobState.RUNNING})


class Trigger(enum.StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"


@dataclass(frozen=True)
class JobRun:
    id: str
    discovery: str
    discovery_snapshot: Discovery
    trigger: Trigger
    state: JobState
    due_at: datetime
    created_at: datetime
    schedule: str | None = None
    target_collector: str = ""
    target_zone: str = ""
    collector: str = ""
    collector_instance_uid: str = ""
    gateway_id: str = ""
    reason: str = ""
    targets_done: int = 0
    targets_total: int = 0
    devices_found: int = 0
    batches_sent: int = 0
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    deadline_at: datetime | None = None
    cancelled_by: str = ""
    attempt: int = 0
    """How many times the run was handed out; the current (or last) attempt's number."""
    lease_expires_at: datetime | None = None
    """While dispatched or running: when it returns to the queue unless renewed."""
    observations_stale: int = 0
    """Observations the gateway's inventory skipped as stale (its count, not the collector's).
    Written only by `record_stale_observations`, never with a state change, so a count
    recorded while the run changes state is not overwritten by the copy read before it."""
    last_event_at: datetime | None = field(default=None, compare=False)
    waiting_reason: str = field(default="", compare=False)
    """While queued: why no collector took it yet (`domain.waiting`; refreshed by the ticker)."""
    waiting_cause: str = field(default="", compare=False)


@dataclass(frozen=True)
class JobUpdate:
    """What a collector reports about a run it was given (the agent protocol's JobUpdate)."""

    job_run_id: str
    state: JobState | None
    targets_done: int = 0
    targets_total: int = 0
    devices_found: int = 0
    error: str = ""
    batches_sent: int = 0
    attempt: int = 0
    """The attempt the update is about; 0 from a collector that predates attempts."""


def new_job_run_id(now: datetime, randbits: Callable[[int], int] = secrets.randbits) -> str:
    """The id of a new run: "jr_" and a ULID (48 bits of milliseconds, 80 random bits).

    The ULID is 26 characters of Crockford base32 (no I, L, O or U). They sort by
    creation time (to the millisecond), so `ORDER BY id` is creation order, and ids
    from several replicas never collide in practice.
    """
    return _encode(int(now.timestamp() * 1000), randbits(80))


class MonotonicRunIds:
    """ULIDs in "monotonic" mode: within one millisecond, the random part counts up.

    Runs a process creates in the same millisecond (or while its clock stands still, as
    in tests) then still sort in creation order, which claims rely on as a tie-break.
    """

    def __init__(self, randbits: Callable[[int], int] = secrets.randbits) -> None:
        self._randbits = randbits
        self._last = (-1, 0)

    def __call__(self, now: datetime) -> str:
        millis = int(now.timestamp() * 1000)
        last_millis, last_random = self._last
        if millis <= last_millis and last_random < _MAX_RANDOM:
            millis, random = last_millis, last_random + 1
        else:
            random = self._randbits(80)
        self._last = (millis, random)
        return _encode(millis, random)


_MAX_RANDOM = (1 << 80) - 1
_next_id = MonotonicRunIds()


def _encode(millis: int, random: int) -> str:
    value = (millis << 80) | random
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return ID_PREFIX + "".join(reversed(chars))


def new_run(
    discovery: Discovery,
    *,
    trigger: Trigger,
    due_at: datetime,
    now: datetime,
    schedule: str | None = None,
    reason: str = "",
    run_id: str | None = None,
) -> JobRun:
    """A queued run of `discovery`, targeted where the discovery says."""
    return JobRun(
        id=run_id or _next_id(now),
        discovery=discovery.name,
        discovery_snapshot=discovery,
        trigger=trigger,
        state=JobState.QUEUED,
        due_at=due_at,
        created_at=now,
        schedule=schedule,
        target_collector=discovery.collector,
        target_zone=discovery.zone,
        reason=reason,
    )


def claim(
    run: JobRun, *, collector: str, instance_uid: str, gateway_id: str, now: datetime, lease_seconds: int
) -> JobRun:
    """The run handed to one collector as its next attempt, leased for `lease_seconds`."""
    if run.state is not JobState.QUEUED:
        raise errors.FailedPrecondition(f"job run {run.id} is {run.state}, not queued")
    return replace(
        run,
        state=JobState.DISPATCHED,
        collector=collector,
        collector_instance_uid=instance_uid,
        gateway_id=gateway_id,
        dispatched_at=now,
        reason="",
        attempt=run.attempt + 1,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )


def check_reporter(run: JobRun, instance_uid: str) -> None:
    """Only the collector a run is dispatched to may report on it."""
    if run.collector_instance_uid == instance_uid:
        return
    if run.state is JobState.CANCELLED and not run.collector_instance_uid:
        return  # cancelled before anyone took it: the answer says so
    where = (
        f"dispatched to collector '{run.collector}' ({run.collector_instance_uid})"
        if run.collector_instance_uid
        else run.state.value
    )
    raise errors.FailedPrecondition(f"job run {run.id} is not dispatched to collector {instance_uid}: it is {where}")


def check_attempt(run: JobRun, update: JobUpdate) -> None:
    """Only the run's current attempt may change it.

    An older attempt was superseded when its lease expired and the run was handed out
    again (possibly to the same collector, after a restart); what it reports describes
    work the run no longer depends on. Attempt 0 comes from a collector that predates
    attempts and is taken as the current one. A newer attempt than the run has was never
    handed out (a restored database, say) and is refused too.
    """
    if update.attempt in (0, run.attempt):
        return
    if update.attempt < run.attempt:
        raise errors.FailedPrecondition(
            f"job run {run.id} attempt {update.attempt} was superseded by attempt {run.attempt}"
        )
    raise errors.FailedPrecondition(
        f"job run {run.id} is at attempt {run.attempt}; attempt {update.attempt} was never handed out"
    )


def apply_update(run: JobRun, update: JobUpdate, now: datetime, *, lease_seconds: int) -> JobRun | None:
    """The run after a collector's update, or None when the update is to be ignored.

    Ignored: any update for a run that is already final (cancelled by an admin, timed
    out, or a duplicate of the final update); the caller answers with the run as it is.
    An update that leaves the run active renews its lease: the holder is evidently alive.
    """
    if run.state.final:
        return None
    state = update.state
    if state is None or state in (JobState.QUEUED, JobState.DISPATCHED):
        shown = state.value if state else "unspecified"
        raise errors.InvalidArgument(f"a collector reports running or a final state for job run {run.id}, not {shown}")
    changed = replace(
        run,
        state=state,
        targets_done=update.targets_done,
        targets_total=update.targets_total,
        devices_found=update.devices_found,
        batches_sent=max(run.batches_sent, update.batches_sent),
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )
    if state is JobState.RUNNING:
        if run.state is JobState.DISPATCHED:
            deadline = now + timedelta(seconds=run.discovery_snapshot.deadline_seconds)
            changed = replace(changed, started_at=now, deadline_at=deadline, reason="")
        return changed
    reason = update.error.strip()[:MAX_REASON_CHARS]
    changed = replace(changed, lease_expires_at=None)
    if state is JobState.CANCELLED:
        return replace(
            changed,
            finished_at=now,
            reason=reason or "cancelled by the collector",
            cancelled_by=run.collector or "collector",
        )
    return replace(changed, finished_at=now, reason=reason)


def is_state_change(before: JobRun, after: JobRun) -> bool:
    return before.state is not after.state


def cancel(run: JobRun, *, actor: str, reason: str, now: datetime) -> JobRun:
    """An admin cancels a run that is not final yet."""
    if run.state.final:
        raise errors.FailedPrecondition(f"job run {run.id} already finished ({run.state}); there is nothing to cancel")
    who = actor.strip() or "unknown"
    return replace(
        run,
        state=JobState.CANCELLED,
        reason=reason.strip()[:MAX_REASON_CHARS] or f"cancelled by {who}",
        cancelled_by=who,
        finished_at=now,
        lease_expires_at=None,
    )


def cancel_by_scheduler(run: JobRun, reason: str, now: datetime) -> JobRun:
    """A queued run the scheduler cancels: missed, superseded, or its definition deleted."""
    return replace(run, state=JobState.CANCELLED, reason=reason, cancelled_by="scheduler", finished_at=now)


def time_out(run: JobRun, now: datetime) -> JobRun:
    deadline = run.discovery_snapshot.deadline_seconds
    return replace(
        run,
        state=JobState.TIMED_OUT,
        finished_at=now,
        lease_expires_at=None,
        reason=f"no final update within the discovery's deadline ({deadline} s) plus {DEADLINE_GRACE_SECONDS} s",
    )


def deadline_passed(run: JobRun, now: datetime) -> bool:
    return (
        run.state is JobState.RUNNING
        and run.deadline_at is not None
        and now - run.deadline_at > timedelta(seconds=DEADLINE_GRACE_SECONDS)
    )


def not_found(run_id: str) -> errors.NotFound:
    return errors.NotFound(f"no job run with id {errors.brief(run_id)}; `outpostctl jobs list` shows recent ones")
