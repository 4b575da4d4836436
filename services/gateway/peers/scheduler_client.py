"""The gateway's client of the scheduler: the dispatch watch, claims, job updates, leases.

Every unary call has a deadline; protobuf stays at this edge except for `JobRun`, which
the gateway only forwards (its discovery snapshot becomes the collector's assignment).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from outpost.agent.v1 import agent_pb2
from outpost.grpc_errors import peer_error
from outpost.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc

CALL_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class DispatchBookmark:
    revision: int


@dataclass(frozen=True)
class RunChanged:
    revision: int
    run: scheduler_pb2.JobRun


@dataclass(frozen=True)
class SettingsChanged:
    revision: int
    collector_check_minutes: int


@dataclass(frozen=True)
class LeaseHold:
    """A collector of this gateway says it is running this run."""

    instance_uid: str
    job_run_id: str


@dataclass(frozen=True)
class LostLease:
    """A hold the scheduler did not renew: the collector must stop the run."""

    instance_uid: str
    job_run_id: str
    reason: str


@dataclass(frozen=True)
class Renewal:
    lost: list[LostLease]
    lease_seconds: float
    """The scheduler's lease length; 0 when it did not say."""


class SchedulerClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)

    async def settings(self) -> int:
        """The stored collector_check_minutes (0 only from a scheduler that sends none)."""
        try:
            response = await self._stub.GetSettings(scheduler_pb2.GetSettingsRequest(), timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc
        return response.settings.collector_check_minutes

    async def watch(self, since_revision: int) -> AsyncIterator[DispatchBookmark | RunChanged | SettingsChanged]:
        call = self._stub.WatchDispatch(scheduler_pb2.WatchDispatchRequest(since_revision=since_revision))
        try:
            async for event in call:
                kind = event.WhichOneof("body")
                if kind == "bookmark":
                    yield DispatchBookmark(event.revision)
                elif kind == "job_run":
                    yield RunChanged(event.revision, event.job_run)
                elif kind == "settings":
                    yield SettingsChanged(event.revision, event.settings.collector_check_minutes)
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc
        finally:
            call.cancel()

    async def claim(
        self, *, gateway_id: str, instance_uid: str, collector: str, zone: str, limit: int = 1
    ) -> list[scheduler_pb2.JobRun]:
        try:
            response = await self._stub.ClaimJobRuns(
                scheduler_pb2.ClaimJobRunsRequest(
                    gateway_id=gateway_id,
                    collector_instance_uid=instance_uid,
                    collector=collector,
                    zone=zone,
                    limit=limit,
                ),
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc
        return list(response.job_runs)

    async def report(
        self, *, gateway_id: str, instance_uid: str, update: agent_pb2.JobUpdate, observations_stale: int = 0
    ) -> scheduler_pb2.JobRun:
        try:
            response = await self._stub.ReportJobUpdate(
                scheduler_pb2.ReportJobUpdateRequest(
                    gateway_id=gateway_id,
                    collector_instance_uid=instance_uid,
                    update=update,
                    observations_stale=observations_stale,
                ),
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc
        return response.job_run

    async def get_run(self, job_run_id: str) -> scheduler_pb2.JobRun:
        try:
            response = await self._stub.GetJobRun(
                scheduler_pb2.GetJobRunRequest(id=job_run_id), timeout=CALL_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc
        return response.job_run

    async def renew_leases(self, *, gateway_id: str, holds: Sequence[LeaseHold]) -> Renewal:
        """Extend the leases of runs this gateway's collectors are running (ADR 0010, "Leases")."""
        try:
            response = await self._stub.RenewLeases(
                scheduler_pb2.RenewLeasesRequest(
                    gateway_id=gateway_id,
                    holds=[
                        scheduler_pb2.LeaseHold(job_run_id=h.job_run_id, collector_instance_uid=h.instance_uid)
                        for h in holds
                    ],
                ),
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc
        return Renewal(
            lost=[LostLease(x.collector_instance_uid, x.job_run_id, x.reason) for x in response.lost],
            lease_seconds=float(response.lease_seconds),
        )
