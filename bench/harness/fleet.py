"""Many supervised collectors in one process: the real reconnect loop, every attempt recorded.

Each `Member` is what `outpost-collector` runs, minus scanning and its data directory:
the real `services.collector.supervisor.Supervisor` (connect, and after every end plan
the next attempt with `plan_reconnect`: full-jitter backoff from
`outpost.backoff`, reset after an accepted session, never sooner than
a server's retry-after) driving the real `Connection` and `CollectorSession` over the
real collector transports. Its identity (Ed25519 + X25519 keys, instance uid, server
binding) lives in memory; its status file is a recorder: the supervisor's own
`status.write("enabled" | "pending" | "disconnected")` calls are how the bench learns
that a collector went live or lost its session, with no polling and no extra code path.

Every attempt (`Supervisor.connect_once`) is recorded when it starts, and gets its result
when the server accepts it or when it ends:

    accepted                   the handshake was answered (a session, PENDING or ENABLED)
    connect failed             the transport could not be opened (WebSocket, TCP: refused)
    refused <REASON>           the server closed the handshake: draining, too many in the
                               handshake, registry busy, ...
    handshake timeout          the collector gave up waiting for the server
    lost before accept         the connection ended before any decision (gRPC connects
                               lazily, so a refused gRPC connection shows here)

`BareMember` is the baseline: the same reconnect policy (`plan_reconnect` on the same
`Backoff`) around a bare client of `bare_servers.py` that reconnects when its connection
ends, with no handshake, registry or session behind it.

The collectors' log lines are counted by event name and dropped (`quiet_logs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import structlog
import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from websockets.asyncio.client import connect as ws_connect

from harness.bare_servers import GRPC_METHOD, HOST, OWN_CONNECTION
from harness.idle_collector import BENCH_HASHER
from outpost.agent.v1 import agent_pb2
from outpost.backoff import Backoff
from outpost.registration import verifier_input
from outpost.session.collector import Closed
from services.collector.connection import ConnectionOutcome, reason_name
from services.collector.domain.server_url import ServerUrl
from services.collector.service_password import ServicePassword
from services.collector.status import StatusFile, StatusState
from services.collector.store.identity import Identity, IdentityStore
from services.collector.supervisor import CollectorProfile, Supervisor, plan_reconnect
from services.collector.transport import ClientTls, Transport, open_transport
from services.collector.transport.sealed import SealedSessions

R = agent_pb2.DisconnectReason
PLAIN = ClientTls()


def quiet_logs() -> Counter[str]:
    """Count structlog events by name (the collectors log every attempt) and drop them."""
    seen: Counter[str] = Counter()

    def count(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        seen[str(event.get("event", ""))] += 1
        raise structlog.DropEvent

    structlog.configure(processors=[count], cache_logger_on_first_use=False)
    return seen


@dataclass
class Attempt:
    """One connection attempt; `result` is "in progress" until it is accepted or ends."""

    member: int
    started: float
    ended: float | None = None
    result: str = "in progress"


@dataclass(frozen=True)
class Change:
    member: int
    at: float
    live: bool


@dataclass
class Recorder:
    """What every member reports, in order, on the loop's monotonic clock."""

    attempts: list[Attempt] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    live: list[bool] = field(default_factory=list)
    live_since: list[float] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    current: list[Attempt | None] = field(default_factory=list)

    def add_member(self) -> int:
        self.live.append(False)
        self.live_since.append(0.0)
        self.accepted.append(False)
        self.current.append(None)
        return len(self.live) - 1

    def begin(self, member: int) -> Attempt:
        attempt = Attempt(member, asyncio.get_running_loop().time())
        self.attempts.append(attempt)
        self.current[member] = attempt
        return attempt

    def end(self, attempt: Attempt, result: str) -> None:
        attempt.ended = asyncio.get_running_loop().time()
        if attempt.result == "in progress":
            attempt.result = result
        if self.current[attempt.member] is attempt:
            self.current[attempt.member] = None

    def was_accepted(self, member: int) -> None:
        """The member's current attempt got a session (its handshake was answered)."""
        self.accepted[member] = True
        attempt = self.current[member]
        if attempt is not None:
            attempt.result = "accepted"

    def went(self, member: int, live: bool) -> None:
        now = asyncio.get_running_loop().time()
        if self.live[member] != live:
            self.live[member] = live
            self.changes.append(Change(member, now, live))
            if live:
                self.live_since[member] = now

    def live_count(self) -> int:
        return sum(self.live)

    def live_count_since(self, since: float) -> int:
        """Members live now on a session that went live after `since`."""
        return sum(1 for live, at in zip(self.live, self.live_since, strict=True) if live and at > since)

    def back_since(self, since: float) -> dict[int, float]:
        """Members live now that went live after `since`: member -> the first such time."""
        first: dict[int, float] = {}
        for change in self.changes:
            if change.live and change.at > since and change.member not in first:
                first[change.member] = change.at
        return {m: at for m, at in first.items() if self.live[m]}

    async def wait(self, done: Callable[[], bool], timeout: float, what: str, poll: float = 0.02) -> None:
        """Until `done()`; polled, so a thousand members changing cost no wake-up each.

        Figures come from the recorded times, never from when this noticed.
        """
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    await asyncio.sleep(poll)
        except TimeoutError:
            raise RuntimeError(f"{what}: not done after {timeout:g}s ({self.live_count()} live)") from None


def classify(outcome: ConnectionOutcome | None) -> str:
    if outcome is None:
        return "connect failed"
    if outcome.accepted:
        return "accepted"
    closed = outcome.closed
    if closed.by_server:
        return f"refused {reason_name(closed.reason).removeprefix('DISCONNECT_REASON_')}"
    if closed.reason == R.DISCONNECT_REASON_HANDSHAKE_TIMEOUT:
        return "handshake timeout"
    return "lost before accept"


# --- the real collector, recorded ---------------------------------------------------------------
class _Status(StatusFile):
    """The status file as a recorder: ENABLED is live, anything else is not."""

    def __init__(self, recorder: Recorder, member: int, identity: Identity) -> None:
        super().__init__(None, identity.instance_uid, identity.fingerprint)
        self._recorder = recorder
        self._member = member

    def write(self, state: StatusState, *, server: str = "", session_id: str = "", server_instance: str = "") -> None:
        if state in ("pending", "enabled"):
            self._recorder.was_accepted(self._member)
        self._recorder.went(self._member, state == "enabled")


class _MemoryIdentityStore(IdentityStore):
    """The binding is kept on the identity only (no data directory)."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent/outpost-bench"))

    def save_binding(self, identity: Identity, server_instance: str) -> bool:
        if identity.bound_server_instance == server_instance:
            return False
        identity.bound_server_instance = server_instance
        return True


class _RecordedSupervisor(Supervisor):
    def __init__(self, recorder: Recorder, member: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._recorder = recorder
        self._member = member

    async def connect_once(self, server: ServerUrl) -> ConnectionOutcome | None:
        attempt = self._recorder.begin(self._member)
        outcome = None
        try:
            outcome = await super().connect_once(server)
        finally:
            self._recorder.end(attempt, classify(outcome))
        return outcome


def _opener(sealed: bool) -> Callable[[ServerUrl], Awaitable[Transport]]:
    """`open_transport` for a member; sealed, the supervisor wraps what it opens (ADR 0019)."""
    return lambda url: open_transport(url, PLAIN, sealed=sealed)


def _cheap_verifier(password: str, *, username: str, public_key: bytes) -> str:
    return BENCH_HASHER.hash(verifier_input(username=username, public_key=public_key, password=password))


@dataclass
class Member:
    """One supervised collector; `start()` runs its supervisor until `stop()`."""

    recorder: Recorder
    name: str
    zone: str
    username: str
    password: str
    server: ServerUrl
    backoff: Backoff
    handshake_timeout: float = 15.0
    sealed: SealedSessions | None = None
    """The access key and Noise key the member seals with (`idle_collector.sealing`); None: unsealed."""
    index: int = -1
    identity: Identity = field(init=False)
    task: asyncio.Task[Any] | None = None

    def __post_init__(self) -> None:
        self.index = self.recorder.add_member()
        self.identity = Identity(
            Ed25519PrivateKey.generate(), str(uuid.uuid4()), "", encryption_key=X25519PrivateKey.generate()
        )

    def _verifier(self) -> str:
        """The password's verifier bound to this member's key (ADR 0013), at the bench's cheap cost."""
        return _cheap_verifier(self.password, username=self.username, public_key=self.identity.public_key)

    def start(self) -> None:
        supervisor = _RecordedSupervisor(
            self.recorder,
            self.index,
            servers=[self.server],
            profile=CollectorProfile(self.name, self.zone, self.username, self._verifier()),
            identity=self.identity,
            identity_store=_MemoryIdentityStore(),
            status=_Status(self.recorder, self.index, self.identity),
            open_transport=_opener(self.sealed is not None),
            backoff=self.backoff,
            handshake_timeout=self.handshake_timeout,
            sealed=self.sealed,
            # Proven at every handshake once registered (ADR 0025), verifiers at the bench's cost.
            password=ServicePassword(username=self.username, password=self.password, make_verifier=_cheap_verifier),
        )
        self.task = asyncio.create_task(supervisor.run(), name=f"collector-{self.name}")

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


# --- the bare baseline --------------------------------------------------------------------------
class BareConnection:
    """One bare client connection: `wait_closed()` returns when the server side goes away."""

    def __init__(self, wait: Callable[[], Awaitable[None]], close: Callable[[], Awaitable[None]]) -> None:
        self.wait_closed = wait
        self.close = close


async def open_bare(kind: str, port: int) -> BareConnection:
    """Connected (for gRPC: the stream answered once); raises on failure."""
    if kind == "tcp":
        reader, writer = await asyncio.open_connection(HOST, port)

        async def tcp_wait() -> None:
            with contextlib.suppress(ConnectionError):
                while await reader.read(64 * 1024):
                    pass

        async def tcp_close() -> None:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

        return BareConnection(tcp_wait, tcp_close)
    if kind == "websocket":
        connection = await ws_connect(f"ws://{HOST}:{port}/", compression=None, open_timeout=30)

        async def ws_wait() -> None:
            await connection.wait_closed()

        async def ws_close() -> None:
            await connection.close()

        return BareConnection(ws_wait, ws_close)
    channel = grpc.aio.insecure_channel(f"{HOST}:{port}", options=[OWN_CONNECTION])
    try:
        call = channel.stream_stream(GRPC_METHOD, request_serializer=None, response_deserializer=None)()
        await call.write(b"hello")
        if await call.read() is grpc.aio.EOF:
            raise ConnectionError("bare gRPC stream ended at once")
    except BaseException:
        await channel.close()
        raise

    async def grpc_wait() -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            while await call.read() is not grpc.aio.EOF:
                pass

    async def grpc_close() -> None:
        call.cancel()
        await channel.close()

    return BareConnection(grpc_wait, grpc_close)


BARE_ERRORS = (OSError, TimeoutError, grpc.aio.AioRpcError, websockets.WebSocketException)


@dataclass
class BareMember:
    """A bare client under the collector's reconnect policy (`plan_reconnect`, same `Backoff`)."""

    recorder: Recorder
    kind: str
    port: int
    server: ServerUrl
    backoff: Backoff
    connect_timeout: float = 15.0
    index: int = -1
    task: asyncio.Task[Any] | None = None

    def __post_init__(self) -> None:
        self.index = self.recorder.add_member()

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"bare-{self.index}")

    async def _run(self) -> None:
        lost = ConnectionOutcome(
            self.server,
            True,
            Closed(R.DISCONNECT_REASON_UNAVAILABLE, "connection lost", retry=True, retry_after=0.0, by_server=False),
        )
        while True:
            attempt = self.recorder.begin(self.index)
            outcome: ConnectionOutcome | None = None
            try:
                async with asyncio.timeout(self.connect_timeout):
                    connection = await open_bare(self.kind, self.port)
            except BARE_ERRORS:
                self.recorder.end(attempt, "connect failed")
            else:
                self.recorder.was_accepted(self.index)
                self.recorder.end(attempt, "accepted")
                self.recorder.went(self.index, True)
                try:
                    await connection.wait_closed()
                finally:
                    self.recorder.went(self.index, False)
                    with contextlib.suppress(*BARE_ERRORS):
                        await connection.close()
                outcome = lost
            await asyncio.sleep(plan_reconnect(outcome, self.backoff).delay)

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
