"""Failover, backoff and the server's retry hints, with the sleeps parked by the test."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from outpost.agent.v1 import agent_pb2
from outpost.backoff import Backoff
from outpost.session.server import AuthDecision, ServerState
from services.collector.domain.server_url import ServerUrl, parse_server_url
from services.collector.status import StatusFile
from services.collector.store.identity import Identity, IdentityStore
from services.collector.supervisor import CollectorProfile, Supervisor
from services.collector.transport import Transport, TransportError

from .conftest import WAIT, ParkedSleeps, read_status
from .memory_gateway import MemoryGateway

R = agent_pb2.DisconnectReason
A = parse_server_url("grpc://gw-a")
B = parse_server_url("tcp://gw-b")
MAX_BACKOFF = 12.0


def routes(table: dict[ServerUrl, MemoryGateway | Exception]) -> Callable[[ServerUrl], Awaitable[Transport]]:
    """An `open_transport` that connects each URL to its gateway, or fails with its error."""

    async def open_transport(url: ServerUrl) -> Transport:
        target = table[url]
        if isinstance(target, Exception):
            raise target
        return await target.open(url)

    return open_transport


@pytest.fixture
def sleeps() -> ParkedSleeps:
    return ParkedSleeps()


@pytest.fixture
def start(
    profile: CollectorProfile,
    identity: Identity,
    identity_store: IdentityStore,
    status: StatusFile,
    sleeps: ParkedSleeps,
) -> Callable[..., asyncio.Task[None]]:
    def start(servers: list[ServerUrl], table: dict[ServerUrl, MemoryGateway | Exception]) -> asyncio.Task[None]:
        supervisor = Supervisor(
            servers=servers,
            profile=profile,
            identity=identity,
            identity_store=identity_store,
            status=status,
            open_transport=routes(table),
            backoff=Backoff(0.5, MAX_BACKOFF, random.Random(5)),
            handshake_timeout=5.0,
            sleep=sleeps,
        )
        return asyncio.create_task(supervisor.run())

    return start


async def stop(task: asyncio.Task[None], *gateways: MemoryGateway) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(WAIT):
            await task
    for gateway in gateways:
        await gateway.stop()


async def test_a_failed_server_is_skipped_for_the_next_after_a_short_jittered_wait(
    start: Callable[..., asyncio.Task[None]], sleeps: ParkedSleeps, status: StatusFile
) -> None:
    gateway = MemoryGateway()
    with capture_logs() as logs:
        task = start([A, B], {A: TransportError("cannot connect to grpc://gw-a:50061: refused"), B: gateway})
        assert 0.0 <= await sleeps.parked() <= 0.5
        sleeps.wake()
        await gateway.wait_until(
            lambda: gateway.connections and gateway.connections[0].session.state is ServerState.PENDING
        )
        await gateway.connections[0].collector_idle()
    assert read_status(status)["server"] == "tcp://gw-b:6600"
    [failed] = [e for e in logs if e["event"] == "connection_failed"]
    assert "refused" in failed["error"]
    await stop(task, gateway)


async def test_after_a_drain_the_collector_reconnects_quickly_with_its_binding(
    start: Callable[..., asyncio.Task[None]], sleeps: ParkedSleeps, identity_store: IdentityStore
) -> None:
    gateway = MemoryGateway()
    task = start([A], {A: gateway})
    await gateway.wait_until(
        lambda: gateway.connections and gateway.connections[0].session.state is ServerState.PENDING
    )
    first = gateway.connections[0]
    assert first.hello.bound_server_instance == ""

    await first.command(lambda s: s.shutdown())
    assert await sleeps.parked() <= 0.5  # accepted: the backoff starts over
    sleeps.wake()
    await gateway.wait_until(lambda: len(gateway.connections) == 2 and gateway.connections[1].received)

    assert gateway.connections[1].hello.bound_server_instance == "instance-a"
    assert IdentityStore(identity_store.data_dir).load_or_create().bound_server_instance == "instance-a"
    await stop(task, gateway)


async def test_a_draining_gateway_sends_the_collector_to_the_next_server_at_once(
    start: Callable[..., asyncio.Task[None]], sleeps: ParkedSleeps
) -> None:
    draining, other = MemoryGateway(), MemoryGateway()
    task = start([A, B], {A: draining, B: other})
    await draining.wait_until(
        lambda: draining.connections and draining.connections[0].session.state is ServerState.PENDING
    )

    await draining.connections[0].command(lambda s: s.shutdown())  # Disconnect(SHUTTING_DOWN, retry)
    assert await sleeps.parked() <= 0.5  # accepted: full jitter from the initial delay
    sleeps.wake()
    await other.wait_until(lambda: other.connections and other.connections[0].session.state is ServerState.PENDING)

    assert len(draining.connections) == 1
    assert [d.reason for d in draining.connections[0].disconnects()] == []  # the server said goodbye, not we
    await stop(task, draining, other)


async def test_the_servers_retry_hint_is_honoured(
    start: Callable[..., asyncio.Task[None]], sleeps: ParkedSleeps
) -> None:
    gateway = MemoryGateway()
    task = start([A], {A: gateway})
    await gateway.wait_until(
        lambda: gateway.connections and gateway.connections[0].session.state is ServerState.PENDING
    )
    await gateway.connections[0].command(lambda s: s.shutdown(retry_after=7))
    assert await sleeps.parked() == 7.0
    await stop(task, gateway)


async def test_a_collector_bound_elsewhere_refuses_the_other_instance_and_waits_the_maximum(
    start: Callable[..., asyncio.Task[None]],
    sleeps: ParkedSleeps,
    identity: Identity,
    identity_store: IdentityStore,
) -> None:
    identity_store.save_binding(identity, "instance-a")
    other = MemoryGateway("instance-b")
    with capture_logs() as logs:
        task = start([A], {A: other})
        assert await sleeps.parked() == MAX_BACKOFF
    served = other.connections[0]
    await other.wait_until(lambda: served.session.closed)
    [disconnect] = served.disconnects()
    assert disconnect.reason == R.DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE
    [loud] = [e for e in logs if e["event"] == "reconnect_needs_operator"]
    assert loud["log_level"] == "error"
    assert loud["reason"] == "DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE"
    assert "instance-a" in loud["message"] and "instance-b" in loud["message"]
    assert "--data-dir" in loud["advice"]
    assert identity.bound_server_instance == "instance-a"
    await stop(task, other)


@pytest.mark.parametrize(
    "refusal",
    [
        R.DISCONNECT_REASON_AUTHENTICATION_FAILED,
        R.DISCONNECT_REASON_NAME_CONFLICT,
        R.DISCONNECT_REASON_UNSUPPORTED_VERSION,
    ],
)
async def test_refusals_keep_the_daemon_retrying_at_the_maximum_backoff(
    start: Callable[..., asyncio.Task[None]], sleeps: ParkedSleeps, refusal: int
) -> None:
    gateway = MemoryGateway(
        decide=lambda hello: AuthDecision(accepted=False, refusal=refusal, message="refused")  # type: ignore[arg-type]
    )
    task = start([A], {A: gateway})
    assert await sleeps.parked() == MAX_BACKOFF
    sleeps.wake()
    assert await sleeps.parked() == MAX_BACKOFF  # still alive, still trying
    assert len(gateway.connections) == 2
    await stop(task, gateway)


async def test_a_failing_attempt_that_raises_a_bug_does_not_end_the_daemon(
    start: Callable[..., asyncio.Task[None]], sleeps: ParkedSleeps
) -> None:
    with capture_logs() as logs:
        task = start([A], {A: RuntimeError("bug in a transport")})
        assert await sleeps.parked() <= 0.5
        sleeps.wake()
        assert await sleeps.parked() <= 1.0
    assert [e["event"] for e in logs].count("connection_crashed") == 2
    await stop(task)


async def test_stopping_while_connected_says_client_shutdown_and_marks_disconnected(
    start: Callable[..., asyncio.Task[None]], status: StatusFile
) -> None:
    gateway = MemoryGateway()
    task = start([A], {A: gateway})
    await gateway.wait_until(
        lambda: gateway.connections and gateway.connections[0].session.state is ServerState.PENDING
    )
    served = gateway.connections[0]

    await stop(task)

    await gateway.wait_until(lambda: served.session.closed)
    assert [d.reason for d in served.disconnects()] == [R.DISCONNECT_REASON_CLIENT_SHUTDOWN]
    assert read_status(status)["state"] == "disconnected"
    await gateway.stop()


async def test_stopping_while_waiting_to_reconnect_is_immediate(
    start: Callable[..., asyncio.Task[None]], sleeps: ParkedSleeps
) -> None:
    task = start([A], {A: TransportError("refused")})
    await sleeps.parked()
    await stop(task)
