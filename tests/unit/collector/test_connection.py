"""The connection loop against a real ServerSession over an in-memory transport."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from argon2 import PasswordHasher
from structlog.testing import capture_logs

from outpost.agent.v1 import agent_pb2
from outpost.registration import verifier_input
from outpost.session.collector import CollectorSession
from outpost.session.server import AuthDecision, ServerSession, ServerState
from outpost.version import PROTOCOL_VERSION, VERSION
from services.collector.connection import Connection, ConnectionOutcome
from services.collector.domain.server_url import parse_server_url
from services.collector.status import StatusFile
from services.collector.store.identity import Identity, IdentityStore
from services.collector.supervisor import CollectorProfile
from services.collector.transport import Transport, TransportError

from .conftest import PASSWORD, WAIT, read_status
from .memory_gateway import MemoryGateway, MemoryTransport, ServedConnection

R = agent_pb2.DisconnectReason
SERVER = parse_server_url("grpc://gw-1")


class Harness:
    """A collector Connection wired to a MemoryGateway connection."""

    def __init__(self, profile: CollectorProfile, identity: Identity, store: IdentityStore, status: StatusFile) -> None:
        self.profile = profile
        self.identity = identity
        self.store = store
        self.status = status

    def connect(self, transport: Transport, *, handshake_timeout: float = 15.0) -> asyncio.Task[ConnectionOutcome]:
        session = CollectorSession(
            hello=self.profile.hello(self.identity),
            sign=self.identity.private_key.sign,
            now=asyncio.get_running_loop().time(),
            handshake_timeout=handshake_timeout,
        )
        connection = Connection(
            transport,
            session,
            server=SERVER,
            identity=self.identity,
            identity_store=self.store,
            status=self.status,
        )
        return asyncio.create_task(connection.run())


@pytest.fixture
def harness(
    profile: CollectorProfile, identity: Identity, identity_store: IdentityStore, status: StatusFile
) -> Harness:
    return Harness(profile, identity, identity_store, status)


async def open_pending(
    gateway: MemoryGateway, harness: Harness
) -> tuple[ServedConnection, asyncio.Task[ConnectionOutcome]]:
    task = harness.connect(await gateway.open())
    served = gateway.connections[-1]
    await gateway.wait_until(lambda: served.session.state is ServerState.PENDING)
    await served.collector_idle()
    return served, task


async def finished(task: asyncio.Task[ConnectionOutcome]) -> ConnectionOutcome:
    async with asyncio.timeout(WAIT):
        return await task


def events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def test_hello_carries_identity_version_and_a_verifier_not_the_password(
    harness: Harness, identity: Identity
) -> None:
    gateway = MemoryGateway(password=PASSWORD)
    served, task = await open_pending(gateway, harness)

    hello = served.hello
    assert hello.protocol_version == PROTOCOL_VERSION
    assert list(hello.capabilities) == ["state_change.v1"]
    assert (hello.name, hello.zone, hello.username) == ("edge-7", "lab", "svc-outpost")
    assert hello.version == VERSION
    assert hello.instance_uid == identity.instance_uid
    assert hello.public_key == identity.public_key
    assert hello.bound_server_instance == ""
    bound = verifier_input(username="svc-outpost", public_key=identity.public_key, password=PASSWORD)
    assert PasswordHasher().verify(hello.password_verifier, bound)
    assert PASSWORD.encode() not in b"".join(m.SerializeToString() for m in served.received)
    task.cancel()
    await gateway.stop()


async def test_pending_enabled_disabled_reach_the_status_file_and_the_log(
    harness: Harness, status: StatusFile, identity: Identity, identity_store: IdentityStore
) -> None:
    gateway = MemoryGateway(password=PASSWORD)
    with capture_logs() as logs:
        served, task = await open_pending(gateway, harness)
        session: ServerSession = served.session

        assert read_status(status) | {"pid": 0} == {
            "pid": 0,
            "state": "pending",
            "server": "grpc://gw-1:50061",
            "session_id": session.session_id,
            "server_instance": "instance-a",
            "fingerprint": identity.fingerprint,
            "instance_uid": identity.instance_uid,
        }
        assert json.loads(identity_store.state_path.read_text())["bound_server_instance"] == "instance-a"
        assert identity.bound_server_instance == "instance-a"

        await served.command(lambda s: s.state_changed(ServerState.ENABLED, "registered", "alice", revision=1))
        await gateway.wait_until(lambda: session.state is ServerState.ENABLED)
        await served.collector_idle()
        assert read_status(status)["state"] == "enabled"

        await served.command(lambda s: s.state_changed(ServerState.DISABLED, "maintenance window", "bob", revision=2))
        await gateway.wait_until(lambda: session.state is ServerState.DISABLED)
        await served.collector_idle()
        assert read_status(status)["state"] == "disabled"

        await served.command(lambda s: s.shutdown(retry_after=5))
        outcome = await finished(task)

    assert outcome.accepted
    assert outcome.closed.reason == R.DISCONNECT_REASON_SHUTTING_DOWN
    assert outcome.closed.by_server and outcome.closed.retry and outcome.closed.retry_after == 5.0
    assert read_status(status)["state"] == "disconnected"
    assert read_status(status)["server"] == "grpc://gw-1:50061"

    accepted = events(logs, "session_accepted")
    assert [(e["server_instance"], e["fingerprint"]) for e in accepted] == [("instance-a", identity.fingerprint)]
    assert events(logs, "server_binding_saved") == [
        {"event": "server_binding_saved", "log_level": "info", "server_instance": "instance-a"}
    ]
    changes = [(e["state"], e["reason"], e["changed_by"]) for e in events(logs, "collector_state_changed")]
    assert changes == [
        ("pending", "waiting for an admin to register this collector", ""),
        ("enabled", "registered", ""),
        ("disabled", "maintenance window", "bob"),
    ]
    [closed] = events(logs, "session_closed")
    assert closed["reason"] == "DISCONNECT_REASON_SHUTTING_DOWN"
    assert closed["by_server"] is True and closed["retry_after"] == 5.0
    assert not any(PASSWORD in repr(e) or "argon2" in repr(e) for e in logs)
    await gateway.stop()


async def test_a_wrong_password_is_refused_and_the_collector_never_reports_pending(
    harness: Harness, status: StatusFile, identity: Identity
) -> None:
    gateway = MemoryGateway(password="not the installed password")
    outcome = await finished(harness.connect(await gateway.open()))

    assert not outcome.accepted
    assert outcome.closed.reason == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
    assert outcome.closed.by_server
    assert read_status(status)["state"] == "disconnected"
    assert identity.bound_server_instance == ""
    await gateway.stop()


async def test_a_registered_collector_is_welcomed_straight_into_its_state(harness: Harness, status: StatusFile) -> None:
    gateway = MemoryGateway(
        decide=lambda hello: AuthDecision(accepted=True, state=ServerState.DISABLED, reason="parked")
    )
    task = harness.connect(await gateway.open())
    served = gateway.connections[0]
    await gateway.wait_until(lambda: served.session.state is ServerState.DISABLED)
    await served.collector_idle()
    assert read_status(status)["state"] == "disabled"
    task.cancel()
    await gateway.stop()


async def test_a_malformed_frame_from_the_server_fails_the_session_and_tells_the_server(harness: Harness) -> None:
    gateway = MemoryGateway()
    served, task = await open_pending(gateway, harness)

    await served.send_raw(b"\xff\xff\xff\xff")
    outcome = await finished(task)

    assert outcome.accepted
    assert outcome.closed.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
    assert not outcome.closed.by_server and outcome.closed.retry
    await gateway.wait_until(lambda: served.session.closed)
    [disconnect] = served.disconnects()
    assert disconnect.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
    await gateway.stop()


async def test_a_stream_that_ends_without_a_disconnect_is_a_lost_connection(harness: Harness) -> None:
    gateway = MemoryGateway()
    served, task = await open_pending(gateway, harness)

    await served.send_raw(None)
    outcome = await finished(task)

    assert outcome.closed.reason == R.DISCONNECT_REASON_UNAVAILABLE
    assert outcome.closed.retry and not outcome.closed.by_server
    await gateway.stop()


async def test_a_silent_server_times_the_handshake_out_and_is_told_why(harness: Harness) -> None:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    silent = MemoryTransport(inbox, asyncio.Queue())

    outcome = await finished(harness.connect(silent, handshake_timeout=0.05))

    assert outcome.closed.reason == R.DISCONNECT_REASON_HANDSHAKE_TIMEOUT
    assert not outcome.accepted
    sent = [agent_pb2.CollectorMessage.FromString(inbox.get_nowait()) for _ in range(inbox.qsize() - 1)]
    assert [m.WhichOneof("body") for m in sent] == ["hello", "disconnect"]
    assert sent[1].disconnect.reason == R.DISCONNECT_REASON_HANDSHAKE_TIMEOUT
    assert silent.closed


async def test_heartbeats_are_sent_on_the_server_interval_and_keep_the_session(harness: Harness) -> None:
    gateway = MemoryGateway(heartbeat_interval=1)
    served, task = await open_pending(gateway, harness)

    await gateway.wait_until(lambda: sum(m.HasField("heartbeat") for m in served.received) >= 1)

    assert served.session.state is ServerState.PENDING
    assert not task.done()
    task.cancel()
    await gateway.stop()


async def test_every_envelope_is_stamped_with_the_wall_clock_as_it_is_written(harness: Harness) -> None:
    gateway = MemoryGateway(heartbeat_interval=1)
    before_ms = time.time_ns() // 1_000_000
    served, task = await open_pending(gateway, harness)
    await gateway.wait_until(lambda: any(m.HasField("heartbeat") for m in served.received))
    after_ms = time.time_ns() // 1_000_000

    assert [m.WhichOneof("body") for m in served.received][:2] == ["hello", "proof"]
    assert all(before_ms <= m.sent_at_unix_ms <= after_ms for m in served.received)
    task.cancel()
    await gateway.stop()


async def test_cancelling_a_connection_says_client_shutdown_before_closing(
    harness: Harness, status: StatusFile
) -> None:
    gateway = MemoryGateway()
    served, task = await open_pending(gateway, harness)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finished(task)

    await gateway.wait_until(lambda: served.session.closed)
    [disconnect] = served.disconnects()
    assert disconnect.reason == R.DISCONNECT_REASON_CLIENT_SHUTDOWN
    assert read_status(status)["state"] == "disconnected"
    await gateway.stop()


class RefusingTransport:
    """A transport whose connection was refused, as a lazily connecting gRPC channel reports it."""

    async def send(self, payload: bytes) -> None:
        raise TransportError("send failed: UNAVAILABLE: Connection refused")

    async def recv(self) -> bytes | None:
        raise TransportError("UNAVAILABLE: Connection refused")

    async def close(self) -> None:
        pass


async def test_a_transport_that_never_reached_the_server_is_logged_as_a_failed_connection(harness: Harness) -> None:
    with capture_logs() as logs:
        outcome = await finished(harness.connect(RefusingTransport()))
    assert outcome.closed.reason == R.DISCONNECT_REASON_UNAVAILABLE and not outcome.accepted
    assert [e["event"] for e in logs] == ["connection_failed"]
    assert "Connection refused" in logs[0]["error"]


class ResettableTransport:
    """Wraps a transport; the frame b"reset" from the server stands for a connection reset."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def send(self, payload: bytes) -> None:
        await self.inner.send(payload)

    async def recv(self) -> bytes | None:
        data = await self.inner.recv()
        if data == b"reset":
            raise TransportError("receive failed: connection reset by peer")
        return data

    async def close(self) -> None:
        await self.inner.close()


async def test_a_transport_that_breaks_mid_session_is_a_lost_session_logged_with_its_error(
    harness: Harness,
) -> None:
    gateway = MemoryGateway()
    with capture_logs() as logs:
        task = harness.connect(ResettableTransport(await gateway.open()))
        served = await gateway.wait_for_state(ServerState.PENDING)
        await served.send_raw(b"reset")
        outcome = await finished(task)
    assert outcome.accepted and outcome.closed.reason == R.DISCONNECT_REASON_UNAVAILABLE
    [closed] = events(logs, "session_closed")
    assert closed["error"] == "receive failed: connection reset by peer"
    assert not events(logs, "connection_failed")
    await gateway.stop()
