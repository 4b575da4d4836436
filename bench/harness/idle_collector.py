"""Lightweight in-process collectors: the real session core over the real transports.

Each `IdleCollector` is what `outpost-collector` runs for one connection, minus the data
directory and status file: a `CollectorSession` (the I/O-free core) driven over the
collector's own transport classes (`open_transport`) by the same loop as
`services.collector.connection.Connection` — tick when due, send what the core queued,
wait for the next frame no later than the next deadline. Hundreds of them share one
event loop, so the gateway sees as many real sessions as there are collectors here.

Sealed sessions (ADR 0019): given an access key (`sealing(...)`), each connection runs
the Noise handshake over its transport first (`SealedTransport`), as the collector does,
with a fresh Noise key per collector and the server key the access key carries.

Timing: `opened_at` is taken just before the transport is opened and `live_at` when the
core enters ENABLED (a Welcome, or a StateChange after an admin registers it), both on
the loop's monotonic clock; handshake-to-live is their difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher, Type
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from outpost.access_key import read_access_key_file
from outpost.agent.v1 import agent_pb2
from outpost.registration import verifier_input
from outpost.session.codec import decode_server_message
from outpost.session.collector import Closed, CollectorSession, CollectorState
from outpost.session.errors import RemoteProtocolError
from outpost.session.noise.wire import HandshakeRefused
from outpost.version import PROTOCOL_VERSION, VERSION
from services.collector.domain.server_url import ServerUrl
from services.collector.service_password import ServicePassword
from services.collector.store.server_pin import ServerPinStore
from services.collector.transport import CLOSE_TIMEOUT, ClientTls, Transport, TransportError, open_transport
from services.collector.transport.sealed import SealedSessions, SealedTransport

PLAIN = ClientTls()
NO_PINS = Path("/nonexistent/outpost-bench-pins")
"""The access keys benches use carry the server key, so nothing is ever pinned to a file."""


def sealing(access_key_file: Path | None) -> SealedSessions | None:
    """What a bench collector seals with: the plane's access key and a fresh Noise key; None: unsealed."""
    if access_key_file is None:
        return None
    static = X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return SealedSessions(read_access_key_file(access_key_file), static, ServerPinStore(NO_PINS))


BENCH_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)
"""The cheapest argon2id the registry accepts: the benches measure enrollment, not argon2."""


@dataclass
class CollectorIdentity:
    """What a collector keeps in its data directory: key, instance uid, binding."""

    name: str
    instance_uid: str
    key: Ed25519PrivateKey
    bound_server_instance: str = ""
    _verifiers: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def generate(cls, name: str) -> CollectorIdentity:
        return cls(name, str(uuid.uuid4()), Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def verifier(self, username: str, password: str) -> str:
        """The password's argon2id verifier bound to this key (ADR 0013), computed once."""
        if (username, password) not in self._verifiers:
            bound = verifier_input(username=username, public_key=self.public_key, password=password)
            self._verifiers[username, password] = BENCH_HASHER.hash(bound)
        return self._verifiers[username, password]

    def hello(self, username: str, password: str) -> agent_pb2.Hello:
        """What this collector says, with a verifier of `password` bound to its key."""
        return agent_pb2.Hello(
            protocol_version=PROTOCOL_VERSION,
            capabilities=["state_change.v1"],
            instance_uid=self.instance_uid,
            name=self.name,
            zone="bench",
            version=VERSION,
            bound_server_instance=self.bound_server_instance,
            public_key=self.public_key,
            username=username,
            password_verifier=self.verifier(username, password),
        )


class IdleCollector:
    """One connection of one collector; `connect()` once, `close()` when done."""

    def __init__(
        self,
        identity: CollectorIdentity,
        hello: agent_pb2.Hello,
        sealed: SealedSessions | None = None,
        *,
        password: str = "",
    ) -> None:
        self.identity = identity
        self.hello = hello
        self.password = ServicePassword(username=hello.username, password=password) if password else None
        """Proven at every handshake once the collector is registered (ADR 0025)."""
        self.sealed = sealed
        self.session: CollectorSession | None = None
        self.transport: Transport | None = None
        self.opened_at = 0.0
        self.live_at: float | None = None
        self.closed: Closed | None = None
        self.error = ""
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    @property
    def state(self) -> CollectorState:
        return self.session.state if self.session is not None else CollectorState.IDLE

    async def connect(self, url: ServerUrl, until: CollectorState, timeout: float) -> None:
        """Open, handshake, and return once the session is in `until`; keep it running.

        Raises RuntimeError (with the close reason) if the session ends or times out first.
        """
        self.opened_at = self._loop.time()
        binding = b""
        try:
            self.transport = await open_transport(url, PLAIN, sealed=self.sealed is not None)
            if self.sealed is not None:
                sealed = await SealedTransport.establish(self.transport, self.sealed, url.family)
                self.transport, binding = sealed, sealed.handshake_hash
        except (TransportError, RemoteProtocolError, HandshakeRefused) as exc:
            self.error = str(exc)
            raise RuntimeError(f"{self.identity.name}: {exc}") from exc
        self.session = CollectorSession(
            self.hello,
            self.identity.key.sign,
            now=self._loop.time(),
            channel_binding=binding,
            password_proofs=self.password.proofs if self.password is not None else None,
        )
        self._task = asyncio.create_task(self._drive(), name=f"collector-{self.identity.name}")
        await self.wait_for(until, timeout)

    async def wait_for(self, state: CollectorState, timeout: float) -> None:
        """Wait until the session is in `state`; RuntimeError if it closes or time runs out."""
        try:
            async with asyncio.timeout(timeout):
                while self.state is not state:
                    if self.state is CollectorState.CLOSED:
                        raise RuntimeError(f"{self.identity.name}: session closed: {self.describe_close()}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise RuntimeError(
                f"{self.identity.name}: still {self.state.value} after {timeout:g}s, waiting for {state.value}"
            ) from None

    def describe_close(self) -> str:
        if self.closed is None:
            return self.error or "not closed"
        reason = agent_pb2.DisconnectReason.Name(self.closed.reason)
        extra = f" ({self.error})" if self.error else ""
        return f"{reason}: {self.closed.message}{extra}"

    async def close(self) -> None:
        """Say goodbye (Disconnect CLIENT_SHUTDOWN) and close the transport, bounded in time."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        elif self.transport is not None and self._task is None:
            await self.transport.close()

    async def _drive(self) -> None:
        session, transport = self.session, self.transport
        assert session is not None and transport is not None
        try:
            session.start(self._loop.time())
            while True:
                deadline = session.next_deadline()
                if deadline is not None and self._loop.time() >= deadline:
                    session.tick(self._loop.time())
                await self._flush()
                self._note_state()
                if session.closed:
                    break
                await self._receive_until(session.next_deadline())
        except asyncio.CancelledError:
            session.shutdown()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._flush()
            self._note_state()
            raise
        finally:
            with contextlib.suppress(Exception):
                await transport.close()

    async def _receive_until(self, deadline: float | None) -> None:
        session, transport = self.session, self.transport
        assert session is not None and transport is not None
        try:
            async with asyncio.timeout_at(deadline):
                data = await transport.recv()
        except TimeoutError:
            session.tick(self._loop.time())
            return
        except RemoteProtocolError as exc:
            session.fail(exc.reason, exc.message)
            return
        except TransportError as exc:
            self.error = str(exc)
            session.connection_lost()
            return
        if data is None:
            session.connection_lost()
            return
        try:
            message = decode_server_message(data)
        except RemoteProtocolError as exc:
            session.fail(exc.reason, exc.message)
            return
        session.receive(message, self._loop.time())

    async def _flush(self) -> None:
        session, transport = self.session, self.transport
        assert session is not None and transport is not None
        for message in session.data_to_send():
            try:
                await transport.send(message.SerializeToString())
            except TransportError as exc:
                self.error = str(exc)
                session.connection_lost()
                return

    def _note_state(self) -> None:
        session = self.session
        assert session is not None
        for event in session.events_received():
            if isinstance(event, Closed):
                self.closed = event
        if session.state is CollectorState.ENABLED and self.live_at is None:
            self.live_at = self._loop.time()
        if session.server_instance:
            self.identity.bound_server_instance = session.server_instance
        self._changed.set()
