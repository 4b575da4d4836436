"""The collector's work over live connections: a real supervisor, runner and spool against
a MemoryGateway running the real ServerSession. Only the scan engine is replaced, by
`Scans`, which yields the devices the test releases."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from outpost.agent.v1 import agent_pb2
from outpost.backoff import Backoff
from outpost.session.server import AuthDecision, ServerState
from services.collector.domain.server_url import parse_server_url
from services.collector.jobs.runner import JobRunner
from services.collector.jobs.work import CollectorWork
from services.collector.status import StatusFile
from services.collector.store.identity import Identity, IdentityStore
from services.collector.store.spool import Spool
from services.collector.supervisor import CollectorProfile, Supervisor

from .conftest import WAIT, ParkedSleeps, read_status
from .memory_gateway import MemoryGateway, ServedConnection

A = parse_server_url("grpc://gw-a")
MAX_BYTES = 8 * 1024 * 1024
JS = agent_pb2.JobState


def assignment(attempt: int = 1, run: str = "jr_1") -> agent_pb2.JobAssignment:
    return agent_pb2.JobAssignment(
        job_run_id=run, discovery="lab", targets=["10.0.0.0/29"], batch_max_devices=1, attempt=attempt
    )


class Scans:
    """The runner's `discover`: a run yields the devices the test releases, ends on `finish`."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, asyncio.Queue[agent_pb2.DeviceObservation | None]] = defaultdict(asyncio.Queue)

    def release(self, run: str, *ips: str) -> None:
        for ip in ips:
            self._queues[run].put_nowait(agent_pb2.DeviceObservation(ip=ip))

    def finish(self, run: str) -> None:
        self._queues[run].put_nowait(None)

    async def __call__(
        self, assignment: agent_pb2.JobAssignment, on_progress: Callable[[int, int, int], None]
    ) -> AsyncIterator[agent_pb2.DeviceObservation]:
        queue = self._queues[assignment.job_run_id]
        while (device := await queue.get()) is not None:
            yield device


@dataclass
class Collector:
    gateway: MemoryGateway
    spool: Spool
    runner: JobRunner
    scans: Scans
    sleeps: ParkedSleeps
    status: StatusFile

    async def enabled(self, index: int = 0) -> ServedConnection:
        return await self.gateway.wait_for_state(ServerState.ENABLED, index)


@pytest.fixture
async def collector(
    tmp_path: Path, profile: CollectorProfile, identity: Identity, identity_store: IdentityStore, status: StatusFile
) -> AsyncIterator[Collector]:
    gateway = MemoryGateway(
        decide=lambda hello: AuthDecision(accepted=True, state=ServerState.ENABLED), heartbeat_interval=1
    )
    spool = Spool.open(tmp_path / "spool", max_bytes=MAX_BYTES)
    status.spool = spool.status
    scans = Scans()
    runner = JobRunner(spool, scans)
    sleeps = ParkedSleeps()
    supervisor = Supervisor(
        servers=[A],
        profile=profile,
        identity=identity,
        identity_store=identity_store,
        status=status,
        open_transport=gateway.open,
        backoff=Backoff(0.5, 12.0, random.Random(5)),
        handshake_timeout=5.0,
        sleep=sleeps,
        work=CollectorWork(spool, runner),
    )
    task = asyncio.create_task(supervisor.run())
    yield Collector(gateway, spool, runner, scans, sleeps, status)
    await runner.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await gateway.stop()
    spool.close()


async def wait_for(predicate: Callable[[], object]) -> None:
    """Wait for a condition on the collector's side (it has no notifier of its own)."""
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)


def received(served: ServedConnection, kind: str) -> Iterator[agent_pb2.CollectorMessage]:
    return (m for m in served.received if m.HasField(kind))


def batches(served: ServedConnection) -> list[tuple[int, int]]:
    return [(m.result_batch.attempt, m.result_batch.sequence) for m in received(served, "result_batch")]


async def test_results_carry_the_attempt_and_only_an_ack_naming_it_frees_the_spool(collector: Collector) -> None:
    served = await collector.enabled()
    await served.command(lambda s: s.assign_job(assignment(attempt=2)))
    await wait_for(lambda: collector.runner.running == ["jr_1"])
    collector.scans.release("jr_1", "10.0.0.1", "10.0.0.2")
    await collector.gateway.wait_until(lambda: len(batches(served)) == 2)
    assert batches(served) == [(2, 1), (2, 2)]

    await served.command(lambda s: s.ack_batch("jr_1", 2, attempt=1))  # the first attempt's identity
    await served.command(lambda s: s.ack_batch("jr_1", 1, attempt=2))
    await wait_for(lambda: collector.spool.unacked == 1)

    collector.scans.finish("jr_1")
    await collector.gateway.wait_until(
        lambda: any(m.job_update.state == JS.JOB_STATE_SUCCEEDED for m in received(served, "job_update"))
    )
    updates = [m.job_update for m in received(served, "job_update")]
    assert {u.attempt for u in updates} == {2}
    assert updates[-1].batches_sent == 2
    final_at = max(i for i, m in enumerate(served.received) if m.job_update.state == JS.JOB_STATE_SUCCEEDED)
    assert all(i < final_at for i, m in enumerate(served.received) if m.HasField("result_batch"))


async def test_the_hello_and_every_heartbeat_carry_the_spool_and_the_running_runs(collector: Collector) -> None:
    served = await collector.enabled()
    assert served.hello.spool.max_bytes == MAX_BYTES
    assert served.hello.spool.max_age_seconds == 7 * 86400

    await served.command(lambda s: s.assign_job(assignment()))
    await wait_for(lambda: collector.runner.running == ["jr_1"])
    collector.scans.release("jr_1", "10.0.0.1")
    await collector.gateway.wait_until(
        lambda: any(m.heartbeat.running_job_run_ids for m in received(served, "heartbeat"))
    )
    beat = next(m.heartbeat for m in received(served, "heartbeat") if m.heartbeat.running_job_run_ids)
    assert list(beat.running_job_run_ids) == ["jr_1"]
    assert (beat.spool.batches, beat.spool.max_bytes) == (1, MAX_BYTES)
    assert beat.spool.bytes > 0 and beat.spool.oldest_unix_ms > 0
    await wait_for(lambda: read_status(collector.status).get("spool", {}).get("batches") == 1)
    assert read_status(collector.status)["state"] == "enabled"


async def test_a_final_update_leaves_the_spool_once_a_later_heartbeat_is_acknowledged(
    collector: Collector,
) -> None:
    served = await collector.enabled()
    await served.command(lambda s: s.assign_job(assignment()))
    await wait_for(lambda: collector.runner.running == ["jr_1"])
    collector.scans.finish("jr_1")
    await collector.gateway.wait_until(
        lambda: any(m.job_update.state == JS.JOB_STATE_SUCCEEDED for m in received(served, "job_update"))
    )
    assert collector.spool.runs_owing_an_end() == ["jr_1"]  # sent, not yet known to be read

    await wait_for(lambda: collector.spool.runs_owing_an_end() == [])
    beats = list(received(served, "heartbeat"))
    assert beats  # the confirmation came from a heartbeat's round trip


async def test_a_throttle_holds_results_back_then_everything_unacked_goes_again(collector: Collector) -> None:
    served = await collector.enabled()
    await served.command(lambda s: s.assign_job(assignment()))
    await wait_for(lambda: collector.runner.running == ["jr_1"])
    collector.scans.release("jr_1", "10.0.0.1", "10.0.0.2")
    await collector.gateway.wait_until(lambda: len(batches(served)) == 2)

    throttled_at_ms = time.time_ns() // 1_000_000
    with capture_logs() as logs:
        await served.command(lambda s: s.throttle(300, "database unavailable"))
        await served.command(lambda s: s.throttle(300, "database unavailable"))
        await wait_for(lambda: collector.spool.throttled)
        collector.scans.release("jr_1", "10.0.0.3")
        await collector.gateway.wait_until(lambda: len(batches(served)) == 5)

    assert batches(served) == [(1, 1), (1, 2), (1, 1), (1, 2), (1, 3)]
    resent = list(received(served, "result_batch"))[2:]
    assert all(m.sent_at_unix_ms >= throttled_at_ms + 300 for m in resent)
    [throttled] = [e for e in logs if e["event"] == "results_throttled"]
    assert throttled["reason"] == "database unavailable" and throttled["retry_after"] == 0.3
    assert "results_resumed" in [e["event"] for e in logs]


async def test_a_new_connection_carries_every_unacked_batch_again(collector: Collector) -> None:
    served = await collector.enabled()
    await served.command(lambda s: s.assign_job(assignment()))
    await wait_for(lambda: collector.runner.running == ["jr_1"])
    collector.scans.release("jr_1", "10.0.0.1", "10.0.0.2")
    await collector.gateway.wait_until(lambda: len(batches(served)) == 2)
    await served.command(lambda s: s.ack_batch("jr_1", 1, attempt=1))
    await wait_for(lambda: collector.spool.unacked == 1)

    await served.command(lambda s: s.shutdown())
    await collector.sleeps.parked()
    collector.sleeps.wake()
    second = await collector.enabled(index=1)
    await collector.gateway.wait_until(lambda: len(batches(second)) == 1)
    assert batches(second) == [(1, 2)]


async def test_a_newer_attempt_of_a_running_run_replaces_it(collector: Collector) -> None:
    served = await collector.enabled()
    await served.command(lambda s: s.assign_job(assignment(attempt=1)))
    await wait_for(lambda: collector.runner.running == ["jr_1"])
    await served.command(lambda s: s.assign_job(assignment(attempt=1)))  # repeated: ignored
    await served.command(lambda s: s.assign_job(assignment(attempt=2)))
    await collector.gateway.wait_until(lambda: any(m.job_update.attempt == 2 for m in received(served, "job_update")))
    collector.scans.release("jr_1", "10.0.0.1")
    await collector.gateway.wait_until(lambda: len(batches(served)) == 1)

    assert batches(served) == [(2, 1)]
    updates = [(m.job_update.attempt, m.job_update.state) for m in received(served, "job_update")]
    assert updates[-1] == (2, JS.JOB_STATE_RUNNING)  # the newest update of the run is the new attempt's
    assert collector.runner.running == ["jr_1"]


async def test_a_cancel_naming_an_older_attempt_does_not_stop_the_newer_one(collector: Collector) -> None:
    served = await collector.enabled()
    await served.command(lambda s: s.assign_job(assignment(attempt=2)))
    await wait_for(lambda: collector.runner.running == ["jr_1"])

    await served.command(lambda s: s.cancel_job("jr_1", "lease of attempt 1 lost", attempt=1))
    await served.command(lambda s: s.cancel_job("jr_1", "cancelled by alice", attempt=2))
    await collector.gateway.wait_until(
        lambda: any(m.job_update.state == JS.JOB_STATE_CANCELLED for m in received(served, "job_update"))
    )

    [final] = [m.job_update for m in received(served, "job_update") if m.job_update.state == JS.JOB_STATE_CANCELLED]
    assert (final.attempt, final.error) == (2, "cancelled by alice")
