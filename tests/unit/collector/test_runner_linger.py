"""The job runner batches by size or by a linger *timer*: a found device is spooled within the
linger time even when the engine then spends long on silent addresses (issue 10, item 6).

The engine is a fake that yields what the test releases; the spool is real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from outpost.agent.v1 import agent_pb2
from services.collector.jobs.runner import JobRunner
from services.collector.store.spool import Spool

from .conftest import WAIT

LINGER = 0.2


class SlowEngine:
    """Yields released devices; between them it is 'probing silent addresses' for as long as the test likes."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[agent_pb2.DeviceObservation | None] = asyncio.Queue()
        self.closed = asyncio.Event()

    def release(self, *ips: str) -> None:
        for ip in ips:
            self.queue.put_nowait(agent_pb2.DeviceObservation(ip=ip))

    def finish(self) -> None:
        self.queue.put_nowait(None)

    async def __call__(
        self, assignment: agent_pb2.JobAssignment, on_progress: Callable[[int, int, int], None]
    ) -> AsyncIterator[agent_pb2.DeviceObservation]:
        try:
            while (device := await self.queue.get()) is not None:
                yield device
        finally:
            self.closed.set()


def assignment(batch_max_devices: int = 64) -> agent_pb2.JobAssignment:
    return agent_pb2.JobAssignment(
        job_run_id="jr_1", discovery="lab", targets=["10.0.0.0/27"], batch_max_devices=batch_max_devices, attempt=1
    )


async def spooled(spool: Spool, count: int) -> list[agent_pb2.ResultBatch]:
    batches: list[agent_pb2.ResultBatch] = []
    async with asyncio.timeout(WAIT):
        while len(batches) < count:
            batches += spool.take_unsent_batches()
            await asyncio.sleep(0.01)
    return batches


async def test_a_found_device_is_sent_within_the_linger_while_the_next_addresses_stay_silent(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path / "spool", max_bytes=8 * 1024 * 1024)
    engine = SlowEngine()
    runner = JobRunner(spool, engine, linger_seconds=LINGER)
    try:
        runner.assign(assignment())
        started = time.monotonic()
        engine.release("10.0.0.1")  # then nothing: twenty silent addresses

        [batch] = await spooled(spool, 1)
        waited = time.monotonic() - started

        assert [d.ip for d in batch.devices] == ["10.0.0.1"]
        assert waited < LINGER + 1.0  # the timer fired; no second device was needed
        assert runner.running == ["jr_1"]  # the scan goes on

        engine.release("10.0.0.30")
        engine.finish()
        [last] = await spooled(spool, 1)
        assert ([d.ip for d in last.devices], last.sequence) == (["10.0.0.30"], 2)
    finally:
        await runner.stop()
        spool.close()


async def test_devices_arriving_within_the_linger_share_a_batch_and_a_full_batch_goes_at_once(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path / "spool", max_bytes=8 * 1024 * 1024)
    engine = SlowEngine()
    runner = JobRunner(spool, engine, linger_seconds=LINGER)
    try:
        runner.assign(assignment(batch_max_devices=3))
        engine.release("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")

        first, second = await spooled(spool, 2)

        assert [d.ip for d in first.devices] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]  # full: at once
        assert [d.ip for d in second.devices] == ["10.0.0.4"]  # its linger ran out
    finally:
        await runner.stop()
        spool.close()


async def test_a_cancel_while_the_engine_probes_stops_it_and_keeps_what_was_found(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path / "spool", max_bytes=8 * 1024 * 1024)
    engine = SlowEngine()
    runner = JobRunner(spool, engine, linger_seconds=30.0)
    try:
        runner.assign(assignment())
        engine.release("10.0.0.1")
        async with asyncio.timeout(WAIT):
            while engine.queue.qsize():
                await asyncio.sleep(0.01)

        runner.cancel("jr_1", "admin cancel")

        [batch] = await spooled(spool, 1)
        assert [d.ip for d in batch.devices] == ["10.0.0.1"]
        async with asyncio.timeout(WAIT):
            await engine.closed.wait()
        [*_, final] = spool.take_updates()
        assert (final.state, final.error) == (agent_pb2.JOB_STATE_CANCELLED, "admin cancel")
    finally:
        await runner.stop()
        spool.close()


async def test_the_batch_time_is_the_collectors_wall_clock(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path / "spool", max_bytes=8 * 1024 * 1024)
    engine = SlowEngine()
    runner = JobRunner(spool, engine, wall_clock=lambda: 1_767_225_600.0, linger_seconds=LINGER)
    try:
        runner.assign(assignment())
        engine.release("10.0.0.1")
        engine.finish()
        [batch] = await spooled(spool, 1)
        assert batch.observed_at_unix_ms == 1_767_225_600_000
    finally:
        await runner.stop()
        spool.close()
