"""The work one enabled collector session carries: claims, assignments, progress, results.

Data flows one way: a claim turns queued runs into assignments (credentials sealed to
this collector by the registry on the way); the collector's progress goes to the
scheduler; its result batches are committed to the inventory and acknowledged only after
the commit. A batch the commit refuses (database down) is not acknowledged, so the
collector sends it again later; a batch sent twice is stored once (the inventory dedups
by batch identity).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import grpc
import structlog

from outpost.agent.v1 import agent_pb2
from outpost.errors import OutpostError
from outpost.scheduler.v1 import scheduler_pb2
from outpost.session.server import ServerSession, ServerState
from services.gateway.domain.session_hub import RunsAvailable
from services.gateway.registry_client import RegistryClient
from services.gateway.scheduler_client import SchedulerClient

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


class Inventory(Protocol):
    async def commit(
        self,
        batch: agent_pb2.ResultBatch,
        *,
        instance_uid: str,
        collector: str,
        zone: str,
        scanned_ports: list[int],
    ) -> bool:
        """Commit a batch; True if it was new, False if it was a duplicate. Raises on failure."""


@dataclass
class WorkContext:
    """What every session's work needs; built once in app.py."""

    gateway_id: str
    scheduler: SchedulerClient
    registry: RegistryClient
    inventory: Inventory


@dataclass
class SessionWork:
    ctx: WorkContext
    instance_uid: str
    name: str
    zone: str
    deliver: Callable[[object], None]
    assigned: dict[str, list[int]] = field(default_factory=dict)

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
        except grpc.aio.AioRpcError as exc:
            log.warning("claim_failed", code=exc.code().name, details=exc.details())
            self._retry_claim_later()
            return
        for run in runs:
            assignment = await self._assignment(run)
            if assignment is None:
                continue
            if core.assign_job(assignment):
                self.assigned[run.id] = list(assignment.ports)
                log.info("job_run_dispatched", job_run_id=run.id, discovery=run.discovery)

    async def job_update(self, core: ServerSession, update: agent_pb2.JobUpdate) -> None:
        try:
            run = await self.ctx.scheduler.report(
                gateway_id=self.ctx.gateway_id, instance_uid=self.instance_uid, update=update
            )
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "job_update_not_recorded", job_run_id=update.job_run_id, code=exc.code().name, details=exc.details()
            )
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION and update.state not in TERMINAL_STATES:
                # The run is no longer this collector's (requeued elsewhere, or unknown):
                # stop the scan rather than let it run for nothing.
                core.cancel_job(update.job_run_id, exc.details() or "run is no longer assigned to this collector")
            return
        if run.state == agent_pb2.JOB_STATE_CANCELLED and update.state not in TERMINAL_STATES:
            core.cancel_job(update.job_run_id, run.reason or "cancelled by an admin")
        if update.state in TERMINAL_STATES:
            self.assigned.pop(update.job_run_id, None)
            log.info("job_run_finished", job_run_id=update.job_run_id, state=agent_pb2.JobState.Name(update.state))
            await self.claim(core)

    async def result_batch(self, core: ServerSession, batch: agent_pb2.ResultBatch) -> None:
        scanned = self.assigned.get(batch.job_run_id)
        if scanned is None:
            # A batch of a run dispatched before this session (the collector reconnected):
            # its discovery snapshot says which ports the run scanned.
            try:
                run = await self.ctx.scheduler.get_run(batch.job_run_id)
            except grpc.aio.AioRpcError as exc:
                log.warning("batch_run_unknown", job_run_id=batch.job_run_id, code=exc.code().name)
                return
            if run.collector_instance_uid != self.instance_uid:
                log.warning("batch_refused_foreign_run", job_run_id=batch.job_run_id)
                return
            scanned = list(run.discovery_snapshot.ports)
        try:
            await self.ctx.inventory.commit(
                batch, instance_uid=self.instance_uid, collector=self.name, zone=self.zone, scanned_ports=scanned
            )
        except (OutpostError, OSError, grpc.aio.AioRpcError) as exc:
            log.warning("batch_commit_failed", job_run_id=batch.job_run_id, sequence=batch.sequence, error=str(exc))
            return
        except Exception:
            log.exception("batch_commit_failed", job_run_id=batch.job_run_id, sequence=batch.sequence)
            return
        core.ack_batch(batch.job_run_id, batch.sequence)

    async def _assignment(self, run: scheduler_pb2.JobRun) -> agent_pb2.JobAssignment | None:
        discovery = run.discovery_snapshot
        probes = list(discovery.probes) or list(DEFAULT_PROBES)
        names = [n for n in (discovery.snmp_credential, discovery.ssh_credential) if n]
        if discovery.snmp_credential and "snmp" not in probes:
            probes.append("snmp")
        if discovery.ssh_credential and "ssh" not in probes:
            probes.append("ssh")
        sealed = agent_pb2.SealedSecret()
        if names:
            try:
                sealed = await self.ctx.registry.seal_credentials(
                    instance_uid=self.instance_uid, names=names, context=run.id
                )
            except grpc.aio.AioRpcError as exc:
                log.warning("credentials_not_sealed", job_run_id=run.id, code=exc.code().name, details=exc.details())
                failed = agent_pb2.JobUpdate(
                    job_run_id=run.id,
                    state=agent_pb2.JOB_STATE_FAILED,
                    error=f"credentials unavailable: {exc.details()}",
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
        )

    async def job_update_quietly(self, update: agent_pb2.JobUpdate) -> None:
        """Report an update the gateway itself decided (e.g. a run it could not assign)."""
        try:
            await self.ctx.scheduler.report(
                gateway_id=self.ctx.gateway_id, instance_uid=self.instance_uid, update=update
            )
        except grpc.aio.AioRpcError as exc:
            log.warning("job_update_not_recorded", job_run_id=update.job_run_id, code=exc.code().name)

    def _retry_claim_later(self) -> None:
        asyncio.get_running_loop().call_later(CLAIM_RETRY_SECONDS, self.deliver, RunsAvailable())
