"""Collectors behind one NAT: one failing collector must not lock the others out.

The gateway's real session loop (`run_session`) runs in-process with the real registry
(SQLite and PostgreSQL) behind a real `RegistryClient`; every connection comes from
127.0.0.1, as a NATed fleet looks to the gateway. The collector end is the real
`CollectorSession` core signing with each FakeCollector's key, inside a sealed session
(`SealedPeer`, ADR 0019) as every collector's is. The failed-handshake
windows run on an injected clock, so "after retry_after" needs no waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from outpost.agent.v1 import agent_pb2
from outpost.backoff import Backoff
from outpost.registry.v1 import registry_pb2
from outpost.session.collector import Accepted, Closed, CollectorSession
from services.collector.connection import ConnectionOutcome
from services.collector.domain.server_url import parse_server_url
from services.collector.supervisor import plan_reconnect
from services.gateway.inventory.ingest_gate import IngestGate
from services.gateway.peers.registry_client import RegistryClient
from services.gateway.sessions.admission import Admission, FailureLimits
from services.gateway.sessions.agent_session import run_session
from services.gateway.sessions.context import GatewayContext
from services.gateway.sessions.hub import SessionHub
from services.gateway.sessions.reports import SessionReporter
from services.gateway.sessions.run_routing import Dispatcher
from services.gateway.sessions.work import WorkContext
from tests.integration.test_registry_support import FakeCollector, RunningRegistry, running_registry
from tests.unit.gateway.sealed_peer import SealedPeer, seal_context
from tests.unit.session.noise_pair import World

R = agent_pb2.DisconnectReason
NAT_HOST = "127.0.0.1"
MAX_PER_KEY = 3
WAIT_SECONDS = 10.0
PORTS = itertools.count(40_000)
WORLD = World()


class Clock:
    """The admission's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class LoopbackStream:
    """An `AgentStream` from one NATed source port; frames as bytes both ways."""

    transport = "tcp"

    def __init__(self) -> None:
        self.remote_address = f"{NAT_HOST}:{next(PORTS)}"
        self.inbound: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.outbound: asyncio.Queue[bytes] = asyncio.Queue()

    async def recv(self) -> bytes | None:
        return await self.inbound.get()

    async def send(self, data: bytes) -> None:
        self.outbound.put_nowait(data)

    async def close(self, reason: str) -> None:
        pass


@asynccontextmanager
async def gateway(registry: RunningRegistry, clock: Clock) -> AsyncIterator[GatewayContext]:
    client = RegistryClient(registry.channel)
    hub = SessionHub()
    nothing: Any = None  # pending collectors get no work: scheduler and inventory are never called
    context = GatewayContext(
        gateway_id="gw-nat",
        server_instance=registry.server_instance,
        heartbeat_interval=30.0,
        handshake_timeout=WAIT_SECONDS,
        registry=client,
        hub=hub,
        reporter=SessionReporter(client, "gw-nat", hub, 30.0),
        admission=Admission(limits=FailureLimits(max_per_key=MAX_PER_KEY, max_per_address=100, window=60), clock=clock),
        work=WorkContext("gw-nat", nothing, client, nothing, IngestGate()),
        dispatcher=Dispatcher(hub),
    )
    yield seal_context(context, WORLD)


async def connect(
    ctx: GatewayContext, identity: FakeCollector, sign: Callable[[bytes], bytes] | None = None
) -> Accepted | Closed:
    """One connection attempt from behind the NAT: how the collector saw it end or get in."""
    stream = LoopbackStream()
    session = asyncio.create_task(run_session(stream, ctx))
    peer = SealedPeer(WORLD)
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            stream.inbound.put_nowait(peer.first_frame())
            frames, heard = peer.receive(await stream.outbound.get())
            if heard:  # refused before the sealed session opened (a typed refusal)
                d = heard[0].disconnect
                return Closed(d.reason, d.message, d.retry, float(d.retry_after_seconds), by_server=True)
            for frame in frames:
                stream.inbound.put_nowait(frame)
            core = CollectorSession(
                identity.hello(), sign or identity.key.sign, now=0.0, channel_binding=peer.end.handshake_hash
            )
            core.start(0.0)
            while True:
                for message in core.data_to_send():
                    for record in peer.seal(message):
                        stream.inbound.put_nowait(record)
                for event in core.events_received():
                    if isinstance(event, Accepted | Closed):
                        return event
                for message in peer.receive(await stream.outbound.get())[1]:
                    core.receive(message, 0.0)
    finally:
        stream.inbound.put_nowait(None)  # the collector goes away
        async with asyncio.timeout(WAIT_SECONDS):
            with contextlib.suppress(asyncio.CancelledError):
                await session


def refused(result: Accepted | Closed, reason: agent_pb2.DisconnectReason) -> Closed:
    assert isinstance(result, Closed), result
    assert result.reason == reason, (R.Name(result.reason), result.message)
    return result


async def test_one_collector_failing_behind_a_nat_does_not_lock_out_another_and_gets_in_after_retry_after(
    database_url: str,
) -> None:
    clock = Clock()
    async with running_registry(database_url) as registry, gateway(registry, clock) as ctx:
        good = FakeCollector("edge-good")
        first_install = FakeCollector("edge-bad")
        assert isinstance(await connect(ctx, good), Accepted)
        assert isinstance(await connect(ctx, first_install), Accepted)
        # Reinstalled with a fresh key under the same identity: the registry refuses it.
        reinstalled = FakeCollector("edge-bad", instance_uid=first_install.instance_uid)

        for _ in range(MAX_PER_KEY):
            refused(await connect(ctx, reinstalled), R.DISCONNECT_REASON_AUTHENTICATION_FAILED)
            clock.now += 1
        limited = refused(await connect(ctx, reinstalled), R.DISCONNECT_REASON_RATE_LIMITED)

        assert limited.retry and limited.retry_after > 0
        assert limited.retry_after == 60 - MAX_PER_KEY  # the window opened at its first failure
        assert f"try again in {int(limited.retry_after)} s" in limited.message
        # The collector waits at least that long before its next attempt.
        outcome = ConnectionOutcome(parse_server_url("tcp://127.0.0.1:6600"), accepted=False, closed=limited)
        assert plan_reconnect(outcome, Backoff(initial=0.1, maximum=1.0)).delay >= limited.retry_after

        # The good collector behind the same address is not affected, however often it comes.
        for _ in range(2 * MAX_PER_KEY):
            assert isinstance(await connect(ctx, good), Accepted)

        # An admin removes the old install; the reinstalled one must still wait out its window...
        await registry.stub.RemoveCollector(registry_pb2.RemoveCollectorRequest(name="edge-bad", actor="alice"))
        clock.now += limited.retry_after - 1
        refused(await connect(ctx, reinstalled), R.DISCONNECT_REASON_RATE_LIMITED)
        # ...and its retry after retry_after succeeds.
        clock.now += 1
        assert isinstance(await connect(ctx, reinstalled), Accepted)


async def test_garbage_from_an_address_is_refused_with_a_retry_hint_once_it_reaches_the_ceiling(
    database_url: str,
) -> None:
    clock = Clock()
    async with running_registry(database_url) as registry, gateway(registry, clock) as ctx:
        ctx.admission = Admission(limits=FailureLimits(max_per_key=100, max_per_address=4, window=60), clock=clock)
        impostor = FakeCollector("edge-impostor")

        for _ in range(4):  # a proof that never verifies proves no key: the address pays
            refused(await connect(ctx, impostor, sign=lambda _: bytes(64)), R.DISCONNECT_REASON_AUTHENTICATION_FAILED)
        limited = refused(await connect(ctx, FakeCollector("edge-innocent")), R.DISCONNECT_REASON_RATE_LIMITED)

        assert limited.retry_after == 60
        clock.now += 60
        assert isinstance(await connect(ctx, FakeCollector("edge-innocent")), Accepted)
