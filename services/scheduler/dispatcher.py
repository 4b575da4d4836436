"""Job runs: admins start, list and cancel them; gateways claim them, report progress, renew leases.

`Dispatcher` is what the servicer calls for runs. Each state change is decided by a pure
function in `domain.job_runs` or `domain.dispatch`, written with a conditional update and
an event in one exclusive transaction, and announced to this replica's watchers after
the commit. Progress of a running run appends an event at most every
`PROGRESS_EVENT_SECONDS` per run (the counters are written every time); state changes
always append one.

Leases (`domain.leases`): a claim leases the run to the collector instance, and its
updates and its gateway's `RenewLeases` calls extend the lease. A renewal changes no
state, so it appends no event and takes no event lock: one UPDATE for the whole call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from outpost import errors
from services.scheduler import metrics
from services.scheduler.clock import Clock, utc_now
from services.scheduler.domain import discoveries as discovery_rules
from services.scheduler.domain import dispatch
from services.scheduler.domain import job_runs as rules
from services.scheduler.domain.job_runs import JobRun, JobState, JobUpdate, Trigger
from services.scheduler.domain.leases import LeaseHold, LeasePolicy, LostLease
from services.scheduler.store.queries import RunFilter, SchedulerStore
from services.scheduler.watch import WatchHub

log = structlog.get_logger(__name__)

PROGRESS_EVENT_SECONDS = 0.5
MAX_IDENTITY_CHARS = 256


@dataclass(frozen=True)
class ClaimRequest:
    gateway_id: str
    collector_instance_uid: str
    collector: str
    zone: str
    limit: int = 0


class Dispatcher:
    def __init__(
        self, store: SchedulerStore, hub: WatchHub, clock: Clock = utc_now, leases: LeasePolicy | None = None
    ) -> None:
        self._store = store
        self._hub = hub
        self._now = clock
        self.leases = leases or LeasePolicy()

    # --- admins -------------------------------------------------------------------------
    async def start_discovery(self, name: str, actor: str) -> JobRun:
        """Queue a manual run of discovery `name` now."""
        name = discovery_rules.validate_name("discovery", name)
        who = actor.strip() or "unknown"
        now = self._now()
        async with self._store.write(exclusive=True) as tx:
            discovery = await tx.discovery(name)
            if discovery is None:
                raise discovery_rules.not_found(name)
            run = rules.new_run(discovery, trigger=Trigger.MANUAL, due_at=now, now=now, reason=f"started by {who}")
            await tx.insert_run(run)
            revision = await tx.append_run_event(run.id, now)
        self._hub.notify(revision)
        metrics.JOB_RUNS_CREATED.labels(Trigger.MANUAL.value).inc()
        log.info("job_run_created", job_run_id=run.id, discovery=name, trigger="manual", actor=who, revision=revision)
        return run

    async def list_runs(
        self, where: RunFilter, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[JobRun], str]:
        """A page of runs newest first and the next page's token (outpost.paging)."""
        async with self._store.read() as tx:
            return await tx.job_runs(where, page_size, page_token)

    async def get_run(self, run_id: str) -> JobRun:
        run_id = _require("a job run id", run_id)
        async with self._store.read() as tx:
            run = await tx.job_run(run_id)
        if run is None:
            raise rules.not_found(run_id)
        return run

    async def cancel(self, run_id: str, *, actor: str, reason: str) -> JobRun:
        """Queued runs stop at once; a dispatched or running one is stopped by its gateway."""
        run_id = _require("a job run id", run_id)
        now = self._now()
        async with self._store.write(exclusive=True) as tx:
            run = await tx.job_run(run_id)
            if run is None:
                raise rules.not_found(run_id)
            cancelled = rules.cancel(run, actor=actor, reason=reason, now=now)
            if not await tx.save_run(cancelled, expected=run):
                raise errors.Unavailable(f"job run {run_id} changed while being cancelled; try again")
            revision = await tx.append_run_event(run_id, now)
        self._hub.notify(revision)
        metrics.JOB_RUNS_FINISHED.labels(JobState.CANCELLED.value).inc()
        log.info(
            "job_run_cancelled",
            job_run_id=run_id,
            was=run.state.value,
            collector=run.collector,
            actor=cancelled.cancelled_by,
            reason=cancelled.reason,
            revision=revision,
        )
        return cancelled

    # --- gateways -----------------------------------------------------------------------
    async def claim(self, request: ClaimRequest) -> list[JobRun]:
        """Hand this collector the queued runs it should run now (see `domain.dispatch`)."""
        gateway_id = _require("gateway_id", request.gateway_id)
        instance_uid = _require("collector_instance_uid", request.collector_instance_uid)
        collector = _require("collector", request.collector)
        zone = request.zone.strip()
        limit = dispatch.claim_limit(request.limit)
        async with self._store.read() as tx:  # most claims find nothing: skip the lock
            if not await tx.any_queued_for(collector, zone):
                return []
        now = self._now()
        claimed: list[JobRun] = []
        missed: list[dispatch.MissedRun] = []
        async with self._store.write(exclusive=True) as tx:
            candidates = await tx.queued_for(collector, zone)
            policies = await tx.missed_run_policies(r.schedule for r in candidates if r.schedule)
            threshold = dispatch.missed_threshold(await tx.settings())
            for miss in dispatch.plan_missed_runs(candidates, policies, now=now, threshold=threshold):
                if await tx.save_run(rules.cancel_by_scheduler(miss.run, miss.reason, now), expected=miss.run):
                    missed.append(miss)
            active = await tx.active_count(collector)
            cancelled = {m.run.id for m in missed}
            for run in dispatch.runs_to_claim(candidates, cancelled=cancelled, active=active, limit=limit):
                taken = rules.claim(
                    run,
                    collector=collector,
                    instance_uid=instance_uid,
                    gateway_id=gateway_id,
                    now=now,
                    lease_seconds=self.leases.seconds,
                )
                if await tx.save_run(taken, expected=run):
                    claimed.append(taken)
            revision = await tx.append_run_events([m.run.id for m in missed] + [r.id for r in claimed], now)
        self._hub.notify(revision)
        for miss in missed:
            metrics.JOB_RUNS_FINISHED.labels(JobState.CANCELLED.value).inc()
            log.info("job_run_missed", job_run_id=miss.run.id, schedule=miss.run.schedule, reason=miss.reason)
        for run in claimed:
            log.info(
                "job_run_dispatched",
                job_run_id=run.id,
                discovery=run.discovery,
                collector=collector,
                gateway_id=gateway_id,
                attempt=run.attempt,
            )
        return claimed

    async def report(
        self, gateway_id: str, instance_uid: str, update: JobUpdate, *, observations_stale: int = 0
    ) -> JobRun:
        """Record a collector's update; the answer is the run as it stands afterwards.

        An update for a run that is already final (e.g. cancelled by an admin meanwhile)
        changes nothing, and the answer says so: the gateway then stops the collector. An
        update from the holder renews its lease; one about a superseded attempt is refused.

        `observations_stale` is the gateway's own total for the run (its inventory skipped
        that many observations as stale): recorded first, in any state and from any
        reporter, since a spooled batch may land after the run ended or its lease moved.
        A report with only that (no state) changes nothing else.
        """
        _require("gateway_id", gateway_id)
        instance_uid = _require("collector_instance_uid", instance_uid)
        run_id = _require("job_run_id", update.job_run_id)
        now = self._now()
        if observations_stale > 0:
            await self._record_stale(run_id, observations_stale)
            if update.state is None:
                async with self._store.read() as tx:
                    counted = await tx.job_run(run_id)
                if counted is None:
                    raise rules.not_found(run_id)
                return counted
        coalesced = await self._record_progress_quietly(run_id, instance_uid, update, now)
        if coalesced is not None:
            return coalesced
        async with self._store.write(exclusive=True) as tx:
            run = await tx.job_run(run_id)
            if run is None:
                raise rules.not_found(run_id)
            rules.check_reporter(run, instance_uid)
            rules.check_attempt(run, update)
            changed = rules.apply_update(run, update, now, lease_seconds=self.leases.seconds)
            if changed is None:
                log.debug("job_update_ignored", job_run_id=run_id, state=run.state.value)
                return run
            if not await tx.save_run(changed, expected=run):
                raise errors.Unavailable(f"job run {run_id} changed while recording the update; send it again")
            revision = await tx.append_run_event(run_id, now)
        self._hub.notify(revision)
        if rules.is_state_change(run, changed):
            if changed.state.final:
                metrics.JOB_RUNS_FINISHED.labels(changed.state.value).inc()
            log.info(
                _CHANGE_EVENTS[changed.state],
                job_run_id=run_id,
                collector=run.collector,
                attempt=run.attempt,
                reason=changed.reason,
                devices_found=changed.devices_found,
                revision=revision,
            )
        return replace(changed, last_event_at=now)

    async def _record_stale(self, run_id: str, total: int) -> None:
        async with self._store.write(exclusive=False) as tx:
            if not await tx.record_stale_observations(run_id, total):
                raise rules.not_found(run_id)
        log.info("job_run_observations_stale", job_run_id=run_id, observations_stale=total)

    async def renew_leases(self, gateway_id: str, holds: list[LeaseHold]) -> list[LostLease]:
        """Extend the lease of each hold still true; the ones that are not, with why.

        A hold is true when its run is dispatched or running and held by that collector
        instance. The answer lists the others (run final, queued again, handed to another
        collector, unknown): the gateway stops those runs on its collectors. A repeated
        hold counts once.
        """
        gateway_id = _require("gateway_id", gateway_id)
        wanted: dict[LeaseHold, None] = {}  # a dict keeps the order and drops repeats
        for hold in holds:
            run_id = _require("job_run_id", hold.job_run_id)
            wanted[LeaseHold(run_id, _require("collector_instance_uid", hold.collector_instance_uid))] = None
        if not wanted:
            return []
        now = self._now()
        async with self._store.write(exclusive=False) as tx:
            lost = await tx.renew_leases(list(wanted), self.leases.expires_at(now))
        metrics.LEASES_RENEWED.inc(len(wanted) - len(lost))
        for miss in lost:
            metrics.LEASES_LOST.inc()
            log.info(
                "lease_lost",
                job_run_id=miss.job_run_id,
                collector_instance_uid=miss.collector_instance_uid,
                gateway_id=gateway_id,
                reason=miss.reason,
            )
        return lost

    async def _record_progress_quietly(
        self, run_id: str, instance_uid: str, update: JobUpdate, now: datetime
    ) -> JobRun | None:
        """Counters of a running run, without an event if one went out very recently.

        Returns None when the update needs the full path (an event, a state change, or an
        error to raise).
        """
        if update.state is not JobState.RUNNING:
            return None
        async with self._store.write(exclusive=False) as tx:
            run = await tx.job_run(run_id)
            if (
                run is None
                or run.state is not JobState.RUNNING
                or run.collector_instance_uid != instance_uid
                or update.attempt not in (0, run.attempt)
                or run.last_event_at is None
                or now - run.last_event_at >= timedelta(seconds=PROGRESS_EVENT_SECONDS)
            ):
                return None
            changed = rules.apply_update(run, update, now, lease_seconds=self.leases.seconds)
            if changed is None or not await tx.save_run(changed, expected=run):
                return None
        return changed


_CHANGE_EVENTS = {
    JobState.RUNNING: "job_run_started",
    JobState.SUCCEEDED: "job_run_succeeded",
    JobState.FAILED: "job_run_failed",
    JobState.TIMED_OUT: "job_run_timed_out",
    JobState.CANCELLED: "job_run_cancelled",
}


def _require(label: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise errors.InvalidArgument(f"{label} is required")
    if len(value) > MAX_IDENTITY_CHARS:
        raise errors.InvalidArgument(f"{label} is longer than {MAX_IDENTITY_CHARS} characters")
    return value
