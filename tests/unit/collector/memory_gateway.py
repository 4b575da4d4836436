"""An in-memory stand-in for the gateway, to drive the collector's connection loop.

`MemoryTransport` is the collector's end of a socket made of two bounded asyncio queues.
`MemoryGateway` runs a real `ServerSession` on the other end, the way the gateway's
session loop does (verify the proof, ask a registry stand-in for the decision, send what
the session returns, tick at its deadlines), so the collector is tested against the
server core it will meet, not against a script of expected bytes.

Waits are on conditions, never on time: `collector_idle()` returns once the collector
has taken every frame sent to it and asked for the next one (or closed), which is after
it acted on them; `wait_until()` waits for a condition on the gateway's side.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from outpost.agent.v1 import agent_pb2
from outpost.registration import verifier_input
from outpost.session import handshake
from outpost.session.codec import decode_collector_message
from outpost.session.server import (
    AuthDecision,
    AuthenticationRequested,
    ServerSession,
    ServerSessionConfig,
    ServerState,
)
from services.collector.domain.server_url import ServerUrl
from services.collector.transport import Transport, TransportError

WAIT = 5.0
QUEUE_BOUND = 64
R = agent_pb2.DisconnectReason

Command = Callable[[ServerSession], None]


class MemoryTransport:
    """The collector's end: `send` feeds the gateway's inbox, `recv` reads its outbox."""

    def __init__(self, inbox: asyncio.Queue[bytes | Command | None], outbox: asyncio.Queue[bytes | None]) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._holding = False  # took a frame and has not asked for the next one yet
        self.closed = False

    async def send(self, payload: bytes) -> None:
        if self.closed:
            raise TransportError("send on a closed memory transport")
        await self._inbox.put(payload)

    async def recv(self) -> bytes | None:
        self._release()
        if self.closed:
            return None
        data = await self._outbox.get()
        self._holding = True
        return data

    async def close(self) -> None:
        self._release()
        if not self.closed:
            self.closed = True
            await self._inbox.put(None)

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self._outbox.task_done()


@dataclass
class ServedConnection:
    """One collector connection as the gateway saw it."""

    session: ServerSession
    inbox: asyncio.Queue[bytes | Command | None]
    outbox: asyncio.Queue[bytes | None]
    received: list[agent_pb2.CollectorMessage] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    @property
    def hello(self) -> agent_pb2.Hello:
        return self.received[0].hello

    def disconnects(self) -> list[agent_pb2.Disconnect]:
        return [m.disconnect for m in self.received if m.HasField("disconnect")]

    async def command(self, command: Command) -> None:
        """Run `command` on the server session inside the gateway's loop (an admin action)."""
        await self.inbox.put(command)

    async def send_raw(self, data: bytes | None) -> None:
        """Put raw bytes (or the end of the stream) on the wire to the collector."""
        await self.outbox.put(data)

    async def collector_idle(self) -> None:
        """Wait until the collector has acted on everything sent to it so far."""
        async with asyncio.timeout(WAIT):
            await self.outbox.join()


class MemoryGateway:
    """Accepts in-memory connections and serves each with a real `ServerSession`.

    `decide` plays the registry: it gets the hello and returns the AuthDecision. With
    `password` set, the hello's verifier must verify against it (as at registration).
    """

    def __init__(
        self,
        server_instance: str = "instance-a",
        *,
        decide: Callable[[agent_pb2.Hello], AuthDecision] | None = None,
        password: str | None = None,
        heartbeat_interval: float = 30.0,
    ) -> None:
        self.config = ServerSessionConfig(server_instance, heartbeat_interval=heartbeat_interval)
        self.decide = decide or (lambda hello: AuthDecision(accepted=True, state=ServerState.PENDING))
        self.password = password
        self.connections: list[ServedConnection] = []
        self._changed = asyncio.Condition()

    async def open(self, url: ServerUrl | None = None) -> Transport:
        """What the collector's `open_transport` returns: a fresh connection to this gateway."""
        loop = asyncio.get_running_loop()
        served = ServedConnection(
            ServerSession(self.config, session_id=str(uuid.uuid4()), nonce=os.urandom(32), now=loop.time()),
            asyncio.Queue(QUEUE_BOUND),
            asyncio.Queue(QUEUE_BOUND),
        )
        served.task = asyncio.create_task(self._serve(served))
        self.connections.append(served)
        await self._notify()
        return MemoryTransport(served.inbox, served.outbox)

    async def wait_for_state(self, state: ServerState, index: int = 0) -> ServedConnection:
        """Wait until connection `index` exists and its server session is in `state`."""
        await self.wait_until(lambda: len(self.connections) > index and self.connections[index].session.state is state)
        return self.connections[index]

    async def wait_until(self, predicate: Callable[[], object]) -> None:
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(predicate)

    async def stop(self) -> None:
        for served in self.connections:
            if served.task is not None:
                served.task.cancel()
        await asyncio.gather(*(s.task for s in self.connections if s.task), return_exceptions=True)

    async def _serve(self, served: ServedConnection) -> None:
        loop = asyncio.get_running_loop()
        session = served.session
        while True:
            # Events first: deciding a handshake queues the Pending/Welcome sent below.
            for event in session.events_received():
                if isinstance(event, AuthenticationRequested):
                    session.authenticated(self._authenticate(event), loop.time())
            for outgoing in session.data_to_send():
                await served.outbox.put(outgoing.SerializeToString())
            await self._notify()
            if session.closed:
                await served.outbox.put(None)
                return
            try:
                async with asyncio.timeout_at(session.next_deadline()):
                    item = await served.inbox.get()
            except TimeoutError:
                session.tick(loop.time())
                continue
            if item is None:
                session.connection_lost()
            elif callable(item):
                item(session)
            else:
                message = decode_collector_message(item)
                served.received.append(message)
                session.receive(message, loop.time())

    def _authenticate(self, request: AuthenticationRequested) -> AuthDecision:
        hello = request.hello
        if not handshake.verify(hello, request.nonce, self.config.server_instance, request.signature):
            return AuthDecision(accepted=False, message="bad proof")
        if self.password is not None:
            try:
                bound = verifier_input(username=hello.username, public_key=hello.public_key, password=self.password)
                PasswordHasher().verify(hello.password_verifier, bound)
            except VerificationError:
                return AuthDecision(accepted=False, message="wrong password")
        decision = self.decide(hello)
        return dataclasses.replace(
            decision,
            fingerprint=decision.fingerprint or handshake.fingerprint(hello.public_key),
            heartbeat_interval=self.config.heartbeat_interval,
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
