"""Job runs: admins start, list and cancel them; gateways claim them, report progress, renew leases.

`Dispatcher` is what the servicer calls for runs. Each state change is decided by a pure
function in `domain.job_runs` or `domain.dispatch`, written with a conditional update and
an event in one exclusive transaction, and announced to this replica's watchers after
the commit. Progress of a running run appends an event at most every
`PROGRESS_EVENT_SECONDS` per run (the counters are written every time); state changes
always append one.

Group commit (ADR 0033): the exclusive writes (starts, cancels, claims, job updates) go
through `write_batches.WriteBatches`, so the calls that arrive together share one
transaction and one wake-up of the watchers; claims of a batch are decided together from
one read of their candidates (`_decide_claims`), in arrival order, each seeing the
changes of the ones before it as if it had its own transaction.

Leases (`domain.leases`): a claim leases the run to the collector instance, and its
updates and its gateway's `RenewLeases` calls extend the lease. A renewal changes no
state, so it appends no event and takes no event lock: one UPDATE for the whole call.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from services.scheduler.store.queries import RunFilter, SchedulerStore, Transaction
from services.scheduler.watch import WatchHub
from services.scheduler.write_batches import WriteBatches

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
        self._batches = WriteBatches(store, hub, claims=self._decide_claims, claim_filter=self._nothing_queued)

    # --- admins -------------------------------------------------------------------------
    async def start_discovery(self, name: str, actor: str) -> JobRun:
        """Queue a manual run of discovery `name` now."""
        name = discovery_rules.validate_name("discovery", name)
        who = actor.strip() or "unknown"
        now = self._now()

        async def start(tx: Transaction) -> tuple[JobRun, int]:
            discovery = await tx.discovery(name)
            if discovery is None:
                raise discovery_rules.not_found(name)
            run = rules.new_run(discovery, trigger=Trigger.MANUAL, due_at=now, now=now, reason=f"started by {who}")
            await tx.insert_run(run)
            return run, await tx.append_run_event(run.id, now)

        run, revision = await self._batches.submit(start)
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

        async def cancel(tx: Transaction) -> tuple[JobRun, JobRun, int]:
            run = await tx.job_run(run_id)
            if run is None:
                raise rules.not_found(run_id)
            cancelled = rules.cancel(run, actor=actor, reason=reason, now=now)
            if not await tx.save_run(cancelled, expected=run):
                raise errors.Unavailable(f"job run {run_id} changed while being cancelled; try again")
            return run, cancelled, await tx.append_run_event(run_id, now)

        run, cancelled, revision = await self._batches.submit(cancel)
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
        request = ClaimRequest(gateway_id, instance_uid, collector, zone, limit)
        missed, claimed = await self._batches.claim(request)
        self._log_claim(request, missed, claimed)
        return claimed

    async def _nothing_queued(
        self, requests: Sequence[ClaimRequest]
    ) -> list[tuple[list[dispatch.MissedRun], list[JobRun]] | None]:
        """An empty answer for each claim no queued run is aimed at, None for the others.

        One read, no lock: most claims find nothing.
        """
        async with self._store.read() as tx:
            targets = await tx.queued_targets_among((r.collector for r in requests), (r.zone for r in requests))
        names = {collector for collector, _ in targets}
        zones = {zone for _, zone in targets}
        return [None if r.collector in names or (r.zone and r.zone in zones) else ([], []) for r in requests]

    async def _decide_claims(
        self, tx: Transaction, requests: Sequence[ClaimRequest]
    ) -> list[tuple[list[dispatch.MissedRun], list[JobRun]]]:
        """Every claim of a batch in one exclusive transaction, in arrival order.

        One read of the queued runs aimed at any claimer, one of their schedules' policies,
        one of the settings and one of the claimers' active counts; then each claim as
        `domain.dispatch` decides it over the runs no earlier claim of the batch took or
        cancelled, and with the counts those claims raised. Each change is a conditional
        update, and one event per changed run is appended for the whole batch. Each answer
        is (runs cancelled as missed, runs claimed), logged by the caller once committed.
        """
        now = self._now()
        queued = await tx.queued_for_any((r.collector for r in requests), (r.zone for r in requests))
        policies = await tx.missed_run_policies(r.schedule for r in queued if r.schedule)
        threshold = dispatch.missed_threshold(await tx.settings())
        active = await tx.active_counts_of(r.collector for r in requests)
        by_name: dict[str, list[JobRun]] = {}
        by_zone: dict[str, list[JobRun]] = {}
        for run in queued:
            by_name.setdefault(run.target_collector, []).append(run)
            by_zone.setdefault(run.target_zone, []).append(run)
        gone: set[str] = set()  # cancelled as missed, or claimed, by an earlier claim of the batch
        answers: list[tuple[list[dispatch.MissedRun], list[JobRun]]] = []
        changed: list[str] = []
        for request in requests:
            aimed = by_name.get(request.collector, []) + (by_zone.get(request.zone, []) if request.zone else [])
            candidates = sorted(
                {r.id: r for r in aimed if r.id not in gone}.values(), key=lambda r: (r.due_at, r.created_at, r.id)
            )
            missed: list[dispatch.MissedRun] = []
            for miss in dispatch.plan_missed_runs(candidates, policies, now=now, threshold=threshold):
                if await tx.save_run(rules.cancel_by_scheduler(miss.run, miss.reason, now), expected=miss.run):
                    missed.append(miss)
                gone.add(miss.run.id)
            cancelled = {m.run.id for m in missed}
            claimed: list[JobRun] = []
            for run in dispatch.runs_to_claim(
                candidates, cancelled=cancelled, active=active.get(request.collector, 0), limit=request.limit
            ):
                taken = rules.claim(
                    run,
                    collector=request.collector,
                    instance_uid=request.collector_instance_uid,
                    gateway_id=request.gateway_id,
                    now=now,
                    lease_seconds=self.leases.seconds,
                )
                if await tx.save_run(taken, expected=run):
                    claimed.append(taken)
                    active[request.collector] = active.get(request.collector, 0) + 1
                gone.add(run.id)
            changed += [m.run.id for m in missed] + [r.id for r in claimed]
            answers.append((missed, claimed))
        await tx.append_run_events(changed, now)
        return answers

    @staticmethod
    def _log_claim(request: ClaimRequest, missed: list[dispatch.MissedRun], claimed: list[JobRun]) -> None:
        for miss in missed:
            metrics.JOB_RUNS_FINISHED.labels(JobState.CANCELLED.value).inc()
            log.info("job_run_missed", job_run_id=miss.run.id, schedule=miss.run.schedule, reason=miss.reason)
        for run in claimed:
            log.info(
                "job_run_dispatched",
                job_run_id=run.id,
                discovery=run.discovery,
                collector=request.collector,
                gateway_id=request.gateway_id,
                attempt=run.attempt,
            )

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

        async def record(tx: Transaction) -> tuple[JobRun, JobRun | None, int]:
            run = await tx.job_run(run_id)
            quiet = self._progress_quietly(run, instance_uid, update, now)
            if quiet is not None and run is not None and await tx.save_run(quiet, expected=run):
                return run, quiet, -1
            if run is None:
                raise rules.not_found(run_id)
            rules.check_reporter(run, instance_uid)
            rules.check_attempt(run, update)
            changed = rules.apply_update(run, update, now, lease_seconds=self.leases.seconds)
            if changed is None:
                return run, None, 0
            if not await tx.save_run(changed, expected=run):
                raise errors.Unavailable(f"job run {run_id} changed while recording the update; send it again")
            return run, changed, await tx.append_run_event(run_id, now)

        run, changed, revision = await self._batches.submit(record)
        if changed is None:
            log.debug("job_update_ignored", job_run_id=run_id, state=run.state.value)
            return run
        if revision < 0:  # counters only, no event (one went out very recently)
            return changed
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

    def _progress_quietly(
        self, run: JobRun | None, instance_uid: str, update: JobUpdate, now: datetime
    ) -> JobRun | None:
        """Counters of a running run to write without an event, if one went out very recently.

        None when the update needs the full path (an event, a state change, or an error).
        """
        if (
            update.state is not JobState.RUNNING
            or run is None
            or run.state is not JobState.RUNNING
            or run.collector_instance_uid != instance_uid
            or update.attempt not in (0, run.attempt)
            or run.last_event_at is None
            or now - run.last_event_at >= timedelta(seconds=PROGRESS_EVENT_SECONDS)
        ):
            return None
        return rules.apply_update(run, update, now, lease_seconds=self.leases.seconds)


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
