"""A run's first progress: the target total goes out as soon as the engine knows it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from outpost.agent.v1 import agent_pb2
from services.collector.jobs.runner import JobRunner
from services.collector.store.spool import Spool


async def test_a_running_job_reports_its_target_total_before_its_first_host_finishes(tmp_path: Path) -> None:
    expanded = asyncio.Event()
    release = asyncio.Event()

    async def discover(
        assignment: agent_pb2.JobAssignment, on_progress: Callable[[int, int, int], None]
    ) -> AsyncIterator[agent_pb2.DeviceObservation]:
        on_progress(0, 65_536, 0)  # the targets are expanded; no host has finished yet
        expanded.set()
        await release.wait()
        return
        yield  # an async generator that yields nothing

    spool = Spool.open(tmp_path / "spool", max_bytes=8 * 1024 * 1024)
    runner = JobRunner(spool, discover)
    try:
        runner.assign(agent_pb2.JobAssignment(job_run_id="jr_1", targets=["10.0.0.0/16"], attempt=1))
        async with asyncio.timeout(5):
            await expanded.wait()
        [update] = [u for u in spool.take_updates() if u.job_run_id == "jr_1"][-1:]
        assert (update.state, update.targets_done, update.targets_total) == (agent_pb2.JOB_STATE_RUNNING, 0, 65_536)
    finally:
        release.set()
        await runner.stop()
        spool.close()
