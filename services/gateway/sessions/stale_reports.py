"""Tell the scheduler how many of a run's observations the inventory skipped as stale.

The inventory counts them per committed batch and sums them per run (store/commit.py);
this sends that total with `ReportJobUpdate` (`observations_stale`, no state), so
`outpostctl jobs show` says it. A total, not an increment: sending it twice, late or out
of order cannot over-count (the scheduler keeps the largest). Reports run in the
background, never holding up the batch's ack, and are retried while the scheduler is
unavailable; the next stale batch of the same run sends the total again anyway.
"""

from __future__ import annotations

import asyncio

import structlog

from outpost import errors
from outpost.agent.v1 import agent_pb2
from services.gateway.peers.scheduler_client import SchedulerClient

log = structlog.get_logger(__name__)

RETRY_PAUSES_SECONDS = (0.0, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0)


class StaleReports:
    def __init__(
        self, gateway_id: str, scheduler: SchedulerClient, pauses: tuple[float, ...] = RETRY_PAUSES_SECONDS
    ) -> None:
        self._gateway_id = gateway_id
        self._scheduler = scheduler
        self._pauses = pauses
        self._tasks: set[asyncio.Task[None]] = set()

    def counted(self, instance_uid: str, job_run_id: str, total: int) -> None:
        """The run has `total` stale observations so far: report it (in the background)."""
        task = asyncio.get_running_loop().create_task(self._report(instance_uid, job_run_id, total))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, timeout: float) -> None:
        """Give reports in flight `timeout` seconds, then drop them (the counts stay in the inventory)."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()

    async def _report(self, instance_uid: str, job_run_id: str, total: int) -> None:
        for pause in self._pauses:
            await asyncio.sleep(pause)
            try:
                await self._scheduler.report(
                    gateway_id=self._gateway_id,
                    instance_uid=instance_uid,
                    update=agent_pb2.JobUpdate(job_run_id=job_run_id),
                    observations_stale=total,
                )
            except errors.Unavailable:
                continue
            except errors.OutpostError as exc:
                log.warning("observations_stale_not_reported", job_run_id=job_run_id, code=exc.status)
                return
            return
        log.warning(
            "observations_stale_not_reported", job_run_id=job_run_id, total=total, advice="scheduler unavailable"
        )
