"""An idle session owns nothing running (issue 13, item 2): no task, no queue, no timer of its own.

Real TCP sessions through the gateway's real listener (`start_tcp_server`, the
`TcpSession` protocol) against the in-memory fakes of `test_session_runner.py`; the
collector's end is its real session core behind a real sealed socket. What must hold:
while sessions are idle no task of theirs exists and each holds no delivery queue, their
deadlines sit in the shared timer wheel, a frame wakes a worker that leaves again once the
frame is handled, and frames waiting beyond the bound stop the transport's reading until
the worker catches up (the bound that replaces the old bounded inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.session.codec import FrameDecoder, encode_frame
from outpost.session.collector import CollectorSession, CollectorState
from services.gateway.sessions.agent_session import INBOX_SIZE, SessionRunner
from services.gateway.sessions.context import GatewayContext
from services.gateway.transports.tcp import TcpListener, start_tcp_server
from tests.unit.collector_identity import make_hello, sign
from tests.unit.gateway.sealed_peer import SealedPeer
from tests.unit.gateway.test_session_runner import (  # noqa: F401 (fixtures)
    SKEW_MS,
    WORLD,
    Collector,
    HeldInventory,
    ctx,
    inventory,
    until,
)

MAX_FRAME = 1 << 20
SESSIONS = 20


class TcpPeerStream:
    """The collector's socket to the gateway's TCP port, with the interface `Collector` drives."""

    transport = "tcp"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.outbound: asyncio.Queue[agent_pb2.ServerMessage] = asyncio.Queue()
        self.peer = SealedPeer(WORLD)
        self.decoder = FrameDecoder(MAX_FRAME)
        self.pump = asyncio.create_task(self._pump())

    def connect(self) -> None:
        self.writer.write(encode_frame(self.peer.first_frame()))

    def put(self, message: agent_pb2.CollectorMessage) -> None:
        message.sent_at_unix_ms = int(time.time() * 1000) + SKEW_MS
        for record in self.peer.seal(message):
            self.writer.write(encode_frame(record))

    async def _pump(self) -> None:
        while chunk := await self.reader.read(65536):
            for frame in self.decoder.feed(chunk):
                replies, heard = self.peer.receive(frame)
                for reply in replies:
                    self.writer.write(encode_frame(reply))
                for message in heard:
                    self.outbound.put_nowait(message)

    async def close(self) -> None:
        self.pump.cancel()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


@pytest.fixture
async def tcp_port(ctx: GatewayContext) -> AsyncIterator[int]:  # noqa: F811
    listener: TcpListener
    listener, port = await start_tcp_server(ctx, "127.0.0.1", 0, None, MAX_FRAME)
    yield port
    listener.close()


async def connect(port: int, number: int | None = None) -> Collector:
    """A live collector over TCP: the test collector, or collector `number` of many."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    stream = TcpPeerStream(reader, writer)
    stream.connect()
    await until(lambda: stream.peer.end.complete)
    collector = Collector(stream)  # type: ignore[arg-type]
    if number is not None:  # its own collector, or each supersedes the last
        hello = make_hello(instance_uid=f"uid-{number}", name=f"edge-{number}")
        collector.core = CollectorSession(hello, sign, now=0.0)
    collector.core.start(0.0)
    collector.send_all()
    await collector.hear(lambda m: m.WhichOneof("body") == "welcome")
    assert collector.core.state is CollectorState.ENABLED
    return collector


def runners(ctx: GatewayContext) -> list[SessionRunner]:  # noqa: F811
    return [deliver.__self__ for deliver in ctx.connections.values()]  # type: ignore[attr-defined]


def session_tasks() -> list[asyncio.Task[object]]:
    """Tasks running a session runner's code (the worker); the test's own tasks are not."""
    return [t for t in asyncio.all_tasks() if "SessionRunner" in t.get_coro().__qualname__]  # type: ignore[union-attr]


async def test_idle_tcp_sessions_own_no_task_or_queue_and_a_frame_wakes_a_worker_that_leaves(
    ctx: GatewayContext,  # noqa: F811
    tcp_port: int,
) -> None:
    collectors = [await connect(tcp_port, number) for number in range(SESSIONS)]
    await until(lambda: len(ctx.hub) == SESSIONS)
    await until(lambda: not session_tasks())  # each worker leaves once its session is idle

    live = runners(ctx)
    assert len(live) == SESSIONS
    assert all(runner._pending is None and runner._worker is None for runner in live)
    assert len(ctx.timers) == SESSIONS  # every liveness deadline is in the one shared wheel

    first = collectors[0]
    first.core.tick(10.0, agent_pb2.Heartbeat())  # a heartbeat is due at the collector
    first.send_all()
    await first.hear(lambda m: m.WhichOneof("body") == "heartbeat_ack")
    await until(lambda: not session_tasks())
    assert len(ctx.timers) == SESSIONS

    for collector in collectors:
        await collector.stream.close()  # type: ignore[attr-defined]
    await until(lambda: not ctx.connections and len(ctx.hub) == 0)
    assert len(ctx.timers) == 0  # an ended session leaves no deadline behind


async def test_frames_beyond_the_bound_stop_reading_until_the_worker_catches_up(
    ctx: GatewayContext,  # noqa: F811
    inventory: HeldInventory,  # noqa: F811
    tcp_port: int,
) -> None:
    collector = await connect(tcp_port)
    [runner] = runners(ctx)
    switched: list[bool] = []
    transport_switch = runner._paused
    assert transport_switch is not None

    def record(on: bool) -> None:
        switched.append(on)
        transport_switch(on)

    runner.reading_switch(record)
    collector.core.send_result_batch(agent_pb2.ResultBatch(job_run_id="jr_1", sequence=1, attempt=1))
    collector.send_all()
    async with asyncio.timeout(5):
        await inventory.started.wait()  # the worker is inside the commit: nothing else is handled

    said = [runner.frame_received(b"\x00") for _ in range(INBOX_SIZE)]  # frames read meanwhile
    assert said == [False] * (INBOX_SIZE - 1) + [True]  # the transport is told to stop reading at the bound
    assert switched == []  # nothing resumed while the worker is stuck

    inventory.release.set()
    await until(lambda: True in switched)  # the worker took a frame: reading resumes
    await collector.stream.close()  # type: ignore[attr-defined]
    await until(lambda: not ctx.connections)


async def test_a_waiting_condition_is_not_a_timer_per_session(ctx: GatewayContext, tcp_port: int) -> None:  # noqa: F811
    """A handshake that never completes is closed by the shared wheel at its deadline."""
    ctx.handshake_timeout = 0.3
    reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
    await until(lambda: len(ctx.connections) == 1)
    assert len(ctx.timers) == 1 and not session_tasks()
    async with asyncio.timeout(5):
        while await reader.read(65536):
            pass
    await until(lambda: not ctx.connections and len(ctx.timers) == 0)
    writer.close()
