"""The gateway's session loop end to end in memory: what it records of the collector, and the drain.

`run_session` runs for real on an in-memory `AgentStream`, sealed as on every transport
(`SealedPeer` is the collector's end of the Noise session); a `CollectorSession` core plays
the collector, and the registry, scheduler and inventory are fakes. The inventory can be
held mid-commit, which is how the drain's promise is shown: a commit in flight when the
gateway drains finishes and is acked, then the collector is told Disconnect(SHUTTING_DOWN)
and nothing queued behind it is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection
from typing import Any

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2
from outpost.session.collector import CollectorSession, CollectorState
from outpost.session.server import AuthDecision, ServerState
from services.gateway.domain.check_interval import CheckInterval
from services.gateway.inventory.ingest_gate import IngestGate
from services.gateway.peers.scheduler_client import SettingsChanged
from services.gateway.sessions.admission import Admission
from services.gateway.sessions.agent_session import run_session
from services.gateway.sessions.context import GatewayContext, Shutdown
from services.gateway.sessions.hub import SessionHub, SpoolStatus
from services.gateway.sessions.reports import SessionReporter
from services.gateway.sessions.run_routing import Dispatcher
from services.gateway.sessions.work import WorkContext
from services.gateway.transports.http_poll import PollSessions
from tests.unit.collector_identity import make_hello, sign
from tests.unit.gateway.sealed_peer import SealedPeer, seal_context
from tests.unit.session.noise_pair import World

R = agent_pb2.DisconnectReason
SKEW_MS = 5_000
HELLO = make_hello(spool=agent_pb2.SpoolStatus(batches=7, bytes=7000, dropped_expired=1))


WORLD = World()


class MemoryStream:
    """An `AgentStream` over two queues, sealed; the collector's clock runs SKEW_MS ahead.

    The collector's side is `SealedPeer`: frames the gateway sends are opened (handshake
    replies answered) and what the test puts is sealed, so `outbound` holds envelopes.
    """

    transport = "tcp"
    remote_address = "10.9.8.7:40000"

    def __init__(self) -> None:
        self.inbound: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.outbound: asyncio.Queue[agent_pb2.ServerMessage] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.peer = SealedPeer(WORLD)

    def connect(self) -> None:
        """Open the sealed session: the handshake's first frame."""
        self.inbound.put_nowait(self.peer.first_frame())

    def put(self, message: agent_pb2.CollectorMessage) -> None:
        message.sent_at_unix_ms = int(time.time() * 1000) + SKEW_MS
        for record in self.peer.seal(message):
            self.inbound.put_nowait(record)

    async def recv(self) -> bytes | None:
        return await self.inbound.get()

    async def send(self, data: bytes) -> None:
        frames, heard = self.peer.receive(data)
        for frame in frames:
            self.inbound.put_nowait(frame)
        for message in heard:
            self.outbound.put_nowait(message)

    async def close(self, reason: str) -> None:
        self.closed.set()


class FakeRegistry:
    async def authenticate(self, **_: Any) -> AuthDecision:
        return AuthDecision(accepted=True, state=ServerState.ENABLED, heartbeat_interval=10.0, revision=1)

    async def password_parameters(self, **_: Any) -> list[agent_pb2.PasswordParameters]:
        return []

    async def report_sessions(self, *_: Any, **__: Any) -> None:
        pass


class FakeScheduler:
    async def claim(self, **_: Any) -> list[Any]:
        return []

    async def get_run(self, job_run_id: str) -> scheduler_pb2.JobRun:
        return scheduler_pb2.JobRun(id=job_run_id, collector_instance_uid=HELLO.instance_uid, attempt=1)

    async def report(self, **_: Any) -> scheduler_pb2.JobRun:
        return scheduler_pb2.JobRun(state=agent_pb2.JOB_STATE_SUCCEEDED)


class HeldInventory:
    """Commits wait until `release` is set; `started` says one has begun."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.committed: list[int] = []
        self.ended: list[dict[str, object]] = []

    async def commit(
        self,
        batch: agent_pb2.ResultBatch,
        *,
        instance_uid: str,
        collector: str,
        zone: str,
        scanned_ports: Collection[int],
        clock_skew_ms: int = 0,
        probes: Collection[str] | None = None,
        discovery: str = "",
    ) -> bool:
        self.started.set()
        await self.release.wait()
        self.committed.append(batch.sequence)
        return True

    async def run_ended(self, **run: object) -> None:
        self.ended.append(run)


class Collector:
    """The collector's end: its session core, pumped through the stream."""

    def __init__(self, stream: MemoryStream, heartbeat: agent_pb2.Heartbeat | None = None) -> None:
        self.stream = stream
        self.core = CollectorSession(HELLO, sign, now=0.0)
        self.heartbeat = heartbeat
        self.heard: list[agent_pb2.ServerMessage] = []

    def send_all(self) -> None:
        for message in self.core.data_to_send():
            self.stream.put(message)

    async def hear(self, until: Callable[[agent_pb2.ServerMessage], bool]) -> None:
        """Feed the core what the gateway sends until a message satisfies `until`."""
        async with asyncio.timeout(5):
            while True:
                message = await self.stream.outbound.get()
                self.heard.append(message)
                self.core.receive(message, 0.0)
                self.send_all()
                if until(message):
                    return

    def kinds(self) -> list[str]:
        return [str(m.WhichOneof("body")) for m in self.heard]


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.001)


@pytest.fixture
def inventory() -> HeldInventory:
    return HeldInventory()


@pytest.fixture
def ctx(inventory: HeldInventory) -> GatewayContext:
    registry, hub = FakeRegistry(), SessionHub()
    context = GatewayContext(
        gateway_id="gw-1",
        server_instance="srv-instance-a",
        heartbeat_interval=10.0,
        handshake_timeout=5.0,
        registry=registry,  # type: ignore[arg-type]
        hub=hub,
        reporter=SessionReporter(registry, "gw-1", hub, 10.0),  # type: ignore[arg-type]
        admission=Admission(),
        work=WorkContext("gw-1", FakeScheduler(), registry, inventory, IngestGate()),  # type: ignore[arg-type]
        dispatcher=Dispatcher(hub),
    )
    return seal_context(context, WORLD)


async def open_session(ctx: GatewayContext, heartbeat: agent_pb2.Heartbeat | None = None) -> tuple[Collector, Any]:
    stream = MemoryStream()
    session = asyncio.create_task(run_session(stream, ctx))
    stream.connect()
    await until(lambda: stream.peer.end.complete)
    collector = Collector(stream, heartbeat)
    collector.core.start(0.0)
    collector.send_all()
    await collector.hear(lambda m: m.WhichOneof("body") == "welcome")
    assert collector.core.state is CollectorState.ENABLED
    return collector, session


async def test_the_live_session_records_the_spool_clock_skew_last_heard_and_running_runs(ctx: GatewayContext) -> None:
    heartbeat = agent_pb2.Heartbeat(
        spool=agent_pb2.SpoolStatus(batches=2, dropped_full=3), running_job_run_ids=["jr_1", "jr_2"]
    )
    before = time.time()
    collector, session = await open_session(ctx, heartbeat)

    [live] = ctx.hub.sessions()
    assert live.spool == SpoolStatus(batches=7, bytes=7000, dropped_expired=1)  # from the Hello
    assert abs(live.clock_skew_ms - SKEW_MS) < 1000
    assert live.last_message_at >= before

    collector.core.tick(10.0, collector.heartbeat)  # a heartbeat is due
    collector.send_all()
    await collector.hear(lambda m: m.WhichOneof("body") == "heartbeat_ack")
    assert live.spool == SpoolStatus(batches=2, dropped_full=3)
    assert live.running_job_run_ids == {"jr_1", "jr_2"}

    # A run's final update ends the gateway's renewals of it before the next heartbeat says so.
    collector.core.send_job_update(agent_pb2.JobUpdate(job_run_id="jr_1", state=agent_pb2.JOB_STATE_SUCCEEDED))
    collector.send_all()
    await until(lambda: live.running_job_run_ids == {"jr_2"})
    session.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await session


async def test_draining_lets_the_commit_in_flight_finish_and_be_acked_then_disconnects(
    ctx: GatewayContext, inventory: HeldInventory
) -> None:
    collector, session = await open_session(ctx)

    collector.core.send_result_batch(agent_pb2.ResultBatch(job_run_id="jr_1", sequence=1, attempt=1))
    collector.send_all()
    await inventory.started.wait()
    # The gateway drains while the commit is in flight; one more batch is already queued.
    ctx.draining = True
    for deliver in list(ctx.connections.values()):
        deliver(Shutdown())
    collector.core.send_result_batch(agent_pb2.ResultBatch(job_run_id="jr_1", sequence=2, attempt=1))
    collector.send_all()
    await asyncio.sleep(0)
    assert not session.done()

    inventory.release.set()
    await collector.hear(lambda m: m.WhichOneof("body") == "disconnect")
    await asyncio.wait_for(session, 5)

    assert collector.kinds()[-2:] == ["batch_ack", "disconnect"]
    ack, disconnect = collector.heard[-2].batch_ack, collector.heard[-1].disconnect
    assert (ack.job_run_id, ack.sequence, ack.attempt) == ("jr_1", 1, 1)
    assert (disconnect.reason, disconnect.retry) == (R.DISCONNECT_REASON_SHUTTING_DOWN, True)
    assert inventory.committed == [1]  # the queued batch was not touched: it is resent elsewhere
    assert ctx.connections == {} and len(ctx.hub) == 0


async def test_an_idle_session_and_one_in_the_handshake_both_leave_when_the_gateway_drains(
    ctx: GatewayContext,
) -> None:
    idle, idle_session = await open_session(ctx)
    handshaking = MemoryStream()
    in_handshake = asyncio.create_task(run_session(handshaking, ctx))
    await until(lambda: len(ctx.connections) == 2)

    ctx.draining = True
    for deliver in list(ctx.connections.values()):
        deliver(Shutdown())

    await idle.hear(lambda m: m.WhichOneof("body") == "disconnect")
    first = await asyncio.wait_for(handshaking.outbound.get(), 5)
    assert first.disconnect.reason == R.DISCONNECT_REASON_SHUTTING_DOWN
    await asyncio.wait_for(asyncio.gather(idle_session, in_handshake), 5)
    assert ctx.connections == {}


async def test_a_connection_arriving_while_draining_is_sent_away_at_once(ctx: GatewayContext) -> None:
    ctx.draining = True
    stream = MemoryStream()
    await asyncio.wait_for(run_session(stream, ctx), 5)
    first = stream.outbound.get_nowait()
    assert (first.disconnect.reason, first.disconnect.retry) == (R.DISCONNECT_REASON_SHUTTING_DOWN, True)


async def test_a_streaming_collector_is_told_the_stored_check_interval_in_its_first_session(
    ctx: GatewayContext,
) -> None:
    ctx.dispatcher.settings_read(1)  # what the gateway read from the scheduler before serving
    collector, session = await open_session(ctx)
    await collector.hear(lambda m: m.WhichOneof("body") == "config_update")
    config = collector.heard[-1].config_update
    assert (config.collector_check_minutes, config.heartbeat_interval_seconds) == (1, 0)

    [live] = ctx.hub.sessions()
    assert live.check_in_seconds == 0  # heard every heartbeat: the registry's usual rule
    ctx.dispatcher.apply(SettingsChanged(revision=8, collector_check_minutes=7))
    await collector.hear(lambda m: m.WhichOneof("body") == "config_update")
    assert collector.heard[-1].config_update.collector_check_minutes == 7
    session.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await session


async def poll(
    sessions: PollSessions, token: str, collector: CollectorSession, peer: SealedPeer, first: tuple[bytes, ...] = ()
) -> agent_pb2.PollResponse:
    """One poll carrying `first` and what the collector core has to send, sealed; its core hears the answer."""
    records = list(first)
    if peer.end.complete:
        records += [r for message in collector.data_to_send() for r in peer.seal(message)]
    response = await sessions.poll(agent_pb2.PollRequest(session_token=token, records=records), "10.9.8.7:40000")
    replies: list[bytes] = []
    for frame in response.records:
        more, heard = peer.receive(frame)
        replies += more
        for message in heard:
            collector.receive(message, 0.0)
    if replies:  # XX message 3: it goes with the next poll
        return await poll(sessions, response.session_token, collector, peer, tuple(replies))
    return response


async def test_a_polling_collector_is_told_to_check_in_at_the_stored_interval_and_its_session_says_so(
    ctx: GatewayContext,
) -> None:
    ctx.dispatcher = Dispatcher(ctx.hub, CheckInterval(seconds_per_minute=3))
    ctx.dispatcher.settings_read(2)
    sessions = PollSessions(ctx)
    collector = CollectorSession(HELLO, sign, now=0.0)
    collector.start(0.0)
    peer = SealedPeer(WORLD, transport="poll")
    response = await poll(sessions, "", collector, peer, (peer.first_frame(),))
    while collector.state is not CollectorState.ENABLED:
        assert response.next_poll_seconds == 0  # the handshake goes at once
        response = await poll(sessions, response.session_token, collector, peer)
    assert response.next_poll_seconds == 6  # 2 "minutes" of 3 s
    assert collector.heartbeat_interval == 6  # its heartbeats do not make it poll sooner
    [live] = ctx.hub.sessions()
    assert live.check_in_seconds == 6
    heard = live.last_message_at

    ctx.dispatcher.apply(SettingsChanged(revision=9, collector_check_minutes=1))
    response = await poll(sessions, response.session_token, collector, peer)  # an empty poll is a check-in
    assert response.next_poll_seconds == 3 and live.check_in_seconds == 3
    assert collector.heartbeat_interval == 3
    assert live.last_message_at >= heard
    await sessions.shutdown()
