"""Keep the leases of the runs this gateway's collectors are running (ADR 0010, "Leases").

A run's lease expires unless its holder is heard from; then the scheduler hands the run
out again as the next attempt. Each heartbeat lists the runs a collector is executing
(`LiveSession.running_job_run_ids`); once per period this loop sends every session's list
to the scheduler in one `RenewLeases` call. The scheduler answers with the holds it did
not renew (the run is final, or another collector's now), and the collector holding one
is sent `JobCancel` through its session's inbox, like an admin's cancel.

The period is the heartbeat interval, shortened to a third of the lease the scheduler
last reported, so two renewals can be lost before a lease expires. A scheduler that
cannot be reached is logged and asked again next period; the leases meanwhile run on
their remaining time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import structlog

from outpost import errors
from services.gateway import metrics
from services.gateway.peers.scheduler_client import LeaseHold, Renewal
from services.gateway.sessions.hub import RunCancelled, SessionHub

log = structlog.get_logger(__name__)

LEASE_FRACTION = 3


class LeaseScheduler(Protocol):
    """The part of `SchedulerClient` this loop uses (a fake in tests)."""

    async def renew_leases(self, *, gateway_id: str, holds: Sequence[LeaseHold]) -> Renewal: ...


class LeaseRenewer:
    def __init__(self, scheduler: LeaseScheduler, hub: SessionHub, gateway_id: str, heartbeat_interval: float) -> None:
        self._scheduler = scheduler
        self._hub = hub
        self._gateway_id = gateway_id
        self._heartbeat_interval = heartbeat_interval
        self.period = heartbeat_interval

    async def run(self) -> None:
        """Renew every period until cancelled."""
        while True:
            await asyncio.sleep(self.period)
            await self.renew()

    def holds(self) -> list[LeaseHold]:
        return [
            LeaseHold(session.instance_uid, run_id)
            for session in self._hub.sessions()
            for run_id in sorted(session.running_job_run_ids)
        ]

    async def renew(self) -> None:
        """One RenewLeases call for every run the live sessions report; cancel the lost ones."""
        holds = self.holds()
        if not holds:
            return
        try:
            renewal = await self._scheduler.renew_leases(gateway_id=self._gateway_id, holds=holds)
        except errors.OutpostError as exc:
            metrics.LEASE_RENEWALS.labels("failed").inc()
            log.warning("lease_renewal_failed", code=exc.status, details=exc.details, holds=len(holds))
            return
        metrics.LEASE_RENEWALS.labels("ok").inc()
        if renewal.lease_seconds > 0:
            self.period = min(self._heartbeat_interval, renewal.lease_seconds / LEASE_FRACTION)
        for lost in renewal.lost:
            metrics.LEASES_LOST.inc()
            log.info("lease_lost", job_run_id=lost.job_run_id, instance_uid=lost.instance_uid, reason=lost.reason)
            for session in self._hub.find(instance_uid=lost.instance_uid):
                session.deliver(RunCancelled(lost.job_run_id, lost.reason or "the run is no longer this collector's"))
