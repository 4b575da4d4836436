"""The work one enabled collector session carries: claims, assignments, progress, results.

Data flows one way: a claim turns queued runs into assignments (credentials sealed to
this collector by the registry on the way); the collector's progress goes to the
scheduler; its result batches pass the ingest gate (`inventory/ingest_gate.py`) into the inventory
and are acknowledged only after the commit. A batch that cannot be committed now
(database down, gateway busy) is answered with Throttle instead, so the collector keeps it
spooled and sends it again later; a batch sent twice is stored once (the inventory dedups
by batch identity: collector, run, attempt, sequence). A batch that can never be stored is
acked as rejected and counted, so the collector does not resend it forever. A run the
scheduler records as succeeded reaches the inventory once more (`WorkContext.run_ended`):
the devices it covered and did not report have missed it (docs/inventory.md, "Lifecycle").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from outpost import errors
from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2
from outpost.session.server import ServerSession, ServerState
from services.gateway import metrics
from services.gateway.inventory.ingest_gate import BatchKey, IngestGate, Outcome, Rejected, Throttled
from services.gateway.peers.registry_client import RegistryClient
from services.gateway.peers.scheduler_client import SchedulerClient
from services.gateway.sessions.hub import RunsAvailable

log = structlog.get_logger(__name__)

TERMINAL_STATES = frozenset(
    {
        agent_pb2.JOB_STATE_SUCCEEDED,
        agent_pb2.JOB_STATE_FAILED,
        agent_pb2.JOB_STATE_TIMED_OUT,
        agent_pb2.JOB_STATE_CANCELLED,
    }
)
DEFAULT_PROBES = ("icmp", "tcp", "dns", "banners")
CLAIM_RETRY_SECONDS = 5.0
BATCH_MAX_DEVICES = 64
SCHEDULER_RETRY_MS = 5000
"""How long a collector holds its batches when the scheduler cannot say which ports a run scanned."""
FINAL_UPDATE_RETRY_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)
"""Pauses between retries of a run's final update the scheduler could not take (about two
minutes in all, beyond the default lease). The collector counts the update delivered once
the gateway has it, so the gateway keeps trying; if it gives up or dies, the run's lease
expires and the run is repeated: work again, nothing lost."""


class Inventory(Protocol):
    async def commit(
        self,
        batch: agent_pb2.ResultBatch,
        *,
        instance_uid: str,
        collector: str,
        zone: str,
        scanned_ports: list[int],
        clock_skew_ms: int = 0,
        probes: list[str] | None = None,
        discovery: str = "",
    ) -> bool:
        """Commit a batch; True if it was new, False if it was a duplicate.

        `clock_skew_ms` is the collector's clock minus ours (the session measures it on
        every frame); `probes` the probes the batch's run ran (None: unknown).

        Raises `errors.Unavailable` (retry later) or `errors.InvalidArgument` (never storable).
        """

    async def run_ended(
        self, *, zone: str, discovery: str, job_run_id: str, targets: Sequence[str], exclusions: Sequence[str]
    ) -> object:
        """A run ended successfully: count the devices it covered and did not report as missed.

        Idempotent per run. Raises `errors.Unavailable` when the database cannot take it now.
        """


@dataclass
class WorkContext:
    """What every session's work needs; built once in app.py."""

    gateway_id: str
    scheduler: SchedulerClient
    registry: RegistryClient
    inventory: Inventory
    gate: IngestGate
    final_update_retries: set[asyncio.Task[None]] = field(default_factory=set)
    retry_pauses: tuple[float, ...] = FINAL_UPDATE_RETRY_SECONDS

    def retry_final_update(self, instance_uid: str, update: agent_pb2.JobUpdate, zone: str) -> None:
        """Keep reporting a run's final update in the background until the scheduler takes it."""
        task = asyncio.get_running_loop().create_task(self._report_until_taken(instance_uid, update, zone))
        self.final_update_retries.add(task)
        task.add_done_callback(self.final_update_retries.discard)

    async def _report_until_taken(self, instance_uid: str, update: agent_pb2.JobUpdate, zone: str) -> None:
        for pause in self.retry_pauses:
            await asyncio.sleep(pause)
            try:
                run = await self.scheduler.report(gateway_id=self.gateway_id, instance_uid=instance_uid, update=update)
            except errors.Unavailable:
                continue
            except errors.OutpostError as exc:
                log.warning("final_update_refused", job_run_id=update.job_run_id, code=exc.status)
                return
            log.info("final_update_recorded_after_retry", job_run_id=update.job_run_id)
            await self.run_ended(run, zone)
            return
        log.warning("final_update_given_up", job_run_id=update.job_run_id, advice="the run's lease decides its fate")

    async def run_ended(self, run: scheduler_pb2.JobRun, zone: str) -> None:
        """The one place a run's end reaches the inventory (missed runs, retirement).

        Only a run the scheduler recorded as succeeded counts: a failed, timed-out or
        cancelled run did not look at all of its targets, so not being reported proves
        nothing. The targets are the run's discovery snapshot, as the collector scanned them.
        """
        if run.state != agent_pb2.JOB_STATE_SUCCEEDED or not run.id:
            return
        snapshot = run.discovery_snapshot
        try:
            await self.inventory.run_ended(
                zone=zone,
                discovery=run.discovery,
                job_run_id=run.id,
                targets=list(snapshot.targets),
                exclusions=list(snapshot.exclusions),
            )
        except errors.OutpostError as exc:
            log.warning("run_end_not_counted", job_run_id=run.id, reason=str(exc))


@dataclass
class SessionWork:
    ctx: WorkContext
    instance_uid: str
    name: str
    zone: str
    deliver: Callable[[object], None]
    assigned: dict[str, list[int]] = field(default_factory=dict)
    probes: dict[str, list[str]] = field(default_factory=dict)
    """The probes each run in `assigned` runs (whose notes a batch replaces)."""
    discoveries: dict[str, str] = field(default_factory=dict)
    """The discovery of each run this session holds: its sightings reset that discovery's missed runs."""

    async def claim(self, core: ServerSession) -> None:
        """Ask the scheduler for runs this collector should run now and send them."""
        if core.state is not ServerState.ENABLED:
            return
        try:
            runs = await self.ctx.scheduler.claim(
                gateway_id=self.ctx.gateway_id,
                instance_uid=self.instance_uid,
                collector=self.name,
                zone=self.zone,
            )
        except errors.OutpostError as exc:
            log.warning("claim_failed", code=exc.status, details=exc.details)
            self._retry_claim_later()
            return
        for run in runs:
            assignment = await self._assignment(run)
            if assignment is None:
                continue
            if core.assign_job(assignment):
                self.assigned[run.id] = tcp_ports_scanned(assignment.ports, assignment.probes)
                self.probes[run.id] = list(assignment.probes)
                self.discoveries[run.id] = run.discovery
                log.info("job_run_dispatched", job_run_id=run.id, discovery=run.discovery)

    async def job_update(self, core: ServerSession, update: agent_pb2.JobUpdate) -> None:
        try:
            run = await self.ctx.scheduler.report(
                gateway_id=self.ctx.gateway_id, instance_uid=self.instance_uid, update=update
            )
        except errors.OutpostError as exc:
            log.warning("job_update_not_recorded", job_run_id=update.job_run_id, code=exc.status, details=exc.details)
            if isinstance(exc, errors.Unavailable) and update.state in TERMINAL_STATES:
                self.ctx.retry_final_update(self.instance_uid, update, self.zone)
                return
            if isinstance(exc, errors.FailedPrecondition) and update.state not in TERMINAL_STATES:
                # The run is no longer this collector's (requeued elsewhere, or unknown):
                # stop the scan rather than let it run for nothing.
                core.cancel_job(
                    update.job_run_id,
                    exc.details or "run is no longer assigned to this collector",
                    attempt=update.attempt,
                )
            return
        if run.state == agent_pb2.JOB_STATE_CANCELLED and update.state not in TERMINAL_STATES:
            core.cancel_job(update.job_run_id, run.reason or "cancelled by an admin", attempt=update.attempt)
        if update.state in TERMINAL_STATES:
            self.assigned.pop(update.job_run_id, None)
            self.probes.pop(update.job_run_id, None)
            self.discoveries.pop(update.job_run_id, None)
            log.info("job_run_finished", job_run_id=update.job_run_id, state=agent_pb2.JobState.Name(update.state))
            await self.ctx.run_ended(run, self.zone)
            await self.claim(core)

    async def result_batch(self, core: ServerSession, batch: agent_pb2.ResultBatch, clock_skew_ms: int = 0) -> None:
        """Commit through the gate, then ack (committed or rejected) or throttle.

        `clock_skew_ms`: the collector's clock minus ours, measured on this very frame.
        """
        scanned = await self._scanned_ports(batch)
        if isinstance(scanned, list):
            probes = self.probes.get(batch.job_run_id)
            outcome = await self.ctx.gate.commit(
                BatchKey(self.instance_uid, batch.job_run_id, batch.attempt, batch.sequence),
                lambda: self.ctx.inventory.commit(
                    batch,
                    instance_uid=self.instance_uid,
                    collector=self.name,
                    zone=self.zone,
                    scanned_ports=scanned,
                    clock_skew_ms=clock_skew_ms,
                    probes=probes,
                    discovery=self.discoveries.get(batch.job_run_id, ""),
                ),
            )
        else:
            outcome = scanned
        if isinstance(outcome, Throttled):
            core.throttle(outcome.retry_after_ms, outcome.reason)
        else:
            core.ack_batch(batch.job_run_id, batch.sequence, batch.attempt)

    async def _scanned_ports(self, batch: agent_pb2.ResultBatch) -> list[int] | Outcome:
        """The TCP ports the batch's run scanned, or why the batch is not committed."""
        scanned = self.assigned.get(batch.job_run_id)
        if scanned is not None:
            return scanned
        # A run dispatched before this session (the collector reconnected): its discovery
        # snapshot says which ports it scanned.
        try:
            run = await self.ctx.scheduler.get_run(batch.job_run_id)
        except errors.NotFound:
            return self._reject(batch, "unknown_run", "the scheduler knows no such job run")
        except errors.OutpostError as exc:
            log.warning("batch_run_unknown", job_run_id=batch.job_run_id, code=exc.status)
            metrics.THROTTLES.labels("scheduler_unavailable").inc()
            return Throttled(SCHEDULER_RETRY_MS, "the scheduler cannot be asked about this run now")
        # A collector's spool may still hold batches of a run it no longer has (its lease
        # expired meanwhile): an earlier attempt's, or the last attempt's of a run taken back
        # to the queue (no holder). They are real observations, and every commit is confined
        # to this collector's registered zone. Refused: a run for another collector or zone,
        # the attempt another collector holds now, and an attempt never handed out.
        # A run meant for another collector or zone was never this collector's, at any attempt.
        if run.target_collector and run.target_collector != self.name:
            return self._reject(
                batch, "foreign_run", f"job run {run.id} is for collector '{run.target_collector}', not '{self.name}'"
            )
        if run.target_zone and run.target_zone != self.zone:
            where = f"job run {run.id} is for zone '{run.target_zone}'; this collector is in '{self.zone}'"
            return self._reject(batch, "foreign_run", where)
        holder = run.collector_instance_uid
        if holder and holder != self.instance_uid and batch.attempt >= run.attempt:
            return self._reject(batch, "foreign_run", "the job run's attempt belongs to another collector")
        if batch.attempt > run.attempt:
            return self._reject(batch, "foreign_run", "the job run was never handed out with this attempt")
        probes = probes_run(run.discovery_snapshot)
        scanned = tcp_ports_scanned(run.discovery_snapshot.ports, probes)
        if holder == self.instance_uid:
            self.assigned[run.id] = scanned
            self.probes[run.id] = probes
            self.discoveries[run.id] = run.discovery
        return scanned

    def _reject(self, batch: agent_pb2.ResultBatch, reason: str, message: str) -> Rejected:
        log.warning(
            "batch_rejected",
            job_run_id=batch.job_run_id,
            attempt=batch.attempt,
            sequence=batch.sequence,
            reason=message,
        )
        metrics.BATCHES_REJECTED.labels(reason).inc()
        return Rejected(message)

    async def _assignment(self, run: scheduler_pb2.JobRun) -> agent_pb2.JobAssignment | None:
        discovery = run.discovery_snapshot
        probes = probes_run(discovery)
        names = [n for n in (discovery.snmp_credential, discovery.ssh_credential) if n]
        sealed = agent_pb2.SealedSecret()
        if names and not self._leased_here(run):
            # Sealing follows the lease: never for a run another collector (or another
            # zone) holds, whatever a claim answered.
            log.warning("credentials_not_sealed", job_run_id=run.id, reason="run is not leased to this collector")
            return None
        if names:
            try:
                sealed = await self.ctx.registry.seal_credentials(
                    instance_uid=self.instance_uid, names=names, context=run.id
                )
            except errors.OutpostError as exc:
                log.warning("credentials_not_sealed", job_run_id=run.id, code=exc.status, details=exc.details)
                failed = agent_pb2.JobUpdate(
                    job_run_id=run.id,
                    state=agent_pb2.JOB_STATE_FAILED,
                    error=f"credentials unavailable: {exc.details}",
                )
                await self.ctx.scheduler.report(
                    gateway_id=self.ctx.gateway_id, instance_uid=self.instance_uid, update=failed
                )
                return None
        return agent_pb2.JobAssignment(
            job_run_id=run.id,
            discovery=run.discovery,
            targets=discovery.targets,
            exclusions=discovery.exclusions,
            ports=discovery.ports,
            probes=probes,
            credentials=sealed,
            concurrency=discovery.concurrency,
            rate_per_second=discovery.rate_per_second,
            timeout_ms=discovery.timeout_ms,
            deadline_seconds=discovery.deadline_seconds,
            dns_resolver=discovery.dns_resolver,
            batch_max_devices=BATCH_MAX_DEVICES,
            zone=self.zone,
            snmp_port=discovery.snmp_port,
            ssh_port=discovery.ssh_port,
            attempt=run.attempt,
        )

    def _leased_here(self, run: scheduler_pb2.JobRun) -> bool:
        """The run's current attempt is leased to this collector, in its registered zone."""
        return (
            run.collector_instance_uid == self.instance_uid
            and run.attempt > 0
            and (not run.target_collector or run.target_collector == self.name)
            and (not run.target_zone or run.target_zone == self.zone)
        )

    async def job_update_quietly(self, update: agent_pb2.JobUpdate) -> None:
        """Report an update the gateway itself decided (e.g. a run it could not assign)."""
        try:
            await self.ctx.scheduler.report(
                gateway_id=self.ctx.gateway_id, instance_uid=self.instance_uid, update=update
            )
        except errors.OutpostError as exc:
            log.warning("job_update_not_recorded", job_run_id=update.job_run_id, code=exc.status)

    def _retry_claim_later(self) -> None:
        asyncio.get_running_loop().call_later(CLAIM_RETRY_SECONDS, self.deliver, RunsAvailable())


def probes_run(discovery: scheduler_pb2.Discovery) -> list[str]:
    """The probes a run of `discovery` runs: its own (else the default set), plus SNMP and
    SSH when it names their credentials."""
    probes = list(discovery.probes) or list(DEFAULT_PROBES)
    if discovery.snmp_credential and "snmp" not in probes:
        probes.append("snmp")
    if discovery.ssh_credential and "ssh" not in probes:
        probes.append("ssh")
    return probes


def tcp_ports_scanned(ports: Iterable[int], probes: Iterable[str]) -> list[int]:
    """The ports whose state a run measured: its ports when the TCP probe ran, else none.

    Only the TCP probe can find a port closed; an ICMP sweep or an SNMP-only run beside a
    port scan must not close every open port (issue 10: history flapped open <-> closed).
    """
    return list(ports) if "tcp" in probes else []
