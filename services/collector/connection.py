"""One connection to a gateway: drive a `CollectorSession` over a transport until it ends.

Theory of operation
-------------------
The session core decides everything; this loop only moves bytes and time. Each turn it
(1) ticks the session if a deadline has passed, (2) sends what the session queued,
(3) acts on the session's events, (4) stops if the session closed, else (5) waits for the
next frame from the transport, but no later than the session's next deadline. A frame is
decoded and fed to the session; a frame that cannot be decoded fails the session with the
matching reason (the session then queues a Disconnect, which step 2 sends); a transport
that breaks or ends is `connection_lost()`.

Every envelope is stamped with the wall clock as it is written (`sent_at_unix_ms`), so
the server can tell a skewed collector clock. A HeartbeatAck is passed to the work (it
confirms the job updates sent before that heartbeat), and each heartbeat sent rewrites
the status file, so its spool figures stay current.

Events: `Accepted` records the server binding in the data directory and binds
`session_id` to every later log line; `StateChanged` is logged and written to the status
file (and an enabled or disabled state tells `on_registered`, so an enrollment token is
sent no more); `Closed` is logged and becomes the connection's outcome, which the supervisor turns
into a reconnect delay.

Cancellation is how the process stops: the session sends Disconnect(CLIENT_SHUTDOWN) if
it got that far, the transport is closed (both bounded in time), and the cancellation
propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from outpost.agent.v1 import agent_pb2
from outpost.session.codec import decode_server_message
from outpost.session.collector import (
    Accepted,
    Closed,
    CollectorSession,
    CollectorState,
    Event,
    RotationReceived,
    StateChanged,
)
from outpost.session.errors import RemoteProtocolError
from services.collector.domain.server_url import ServerUrl
from services.collector.key_rotation import KeyRotator
from services.collector.status import StatusFile, StatusState
from services.collector.store.identity import Identity, IdentityStore
from services.collector.transport import CLOSE_TIMEOUT, Transport, TransportError
from services.collector.transport.sealed import SealedTransport

log = structlog.get_logger(__name__)

STATUS_BY_STATE: dict[CollectorState, StatusState] = {
    CollectorState.PENDING: "pending",
    CollectorState.ENABLED: "enabled",
    CollectorState.DISABLED: "disabled",
}


class Work(Protocol):
    """The collector's jobs, as a connection sees them (see services.collector.jobs.work)."""

    @property
    def changed(self) -> asyncio.Event:
        """Set when there is something new to send."""

    def connection_opened(self) -> None:
        """A new connection: everything not yet acknowledged must be sent again."""

    def fill(self, session: CollectorSession) -> None:
        """Hand the session what it may carry now (results, job updates)."""

    async def on_event(self, event: Event) -> None:
        """Act on work events (assignments, cancels, acks, throttles, config) and state changes."""

    def heartbeat(self) -> agent_pb2.Heartbeat:
        """What the heartbeat about to be sent carries; called once per heartbeat sent (`_tick`)."""

    def heartbeat_acked(self) -> None:
        """The server acknowledged this connection's oldest unacknowledged heartbeat."""

    def spool_status(self) -> agent_pb2.SpoolStatus:
        """The spool as the Hello reports it."""


@dataclass(frozen=True)
class ConnectionOutcome:
    """How a connection ended: whether the server accepted it, and the session's Closed."""

    server: ServerUrl
    accepted: bool
    closed: Closed


class Connection:
    """Drives one `CollectorSession` over one open transport; `run()` once."""

    def __init__(
        self,
        transport: Transport,
        session: CollectorSession,
        *,
        server: ServerUrl,
        identity: Identity,
        identity_store: IdentityStore,
        status: StatusFile,
        work: Work | None = None,
        wall_clock: Callable[[], float] = time.time,
        on_registered: Callable[[CollectorState], None] | None = None,
        rotator: KeyRotator | None = None,
    ) -> None:
        self.transport = transport
        self.rotator = rotator
        """Identity key rotation (ADR 0024); `identity` is the one this connection presents."""
        self._rotation_sent = False
        self.on_registered = on_registered
        """Told when the server says the collector is registered (enabled or disabled)."""
        self._wall_clock = wall_clock
        self.work = work
        self._recv: asyncio.Task[bytes | None] | None = None
        self.session = session
        self.server = server
        self.identity = identity
        self.identity_store = identity_store
        self.status = status
        self.accepted = False
        self.closed: Closed | None = None
        self._transport_error = ""
        self._heard_from_server = False
        self._loop = asyncio.get_running_loop()

    async def run(self) -> ConnectionOutcome:
        """Run the session to its end; close the transport; return how it ended."""
        session = self.session
        try:
            session.start(self._loop.time())
            if self.work is not None:
                self.work.connection_opened()
            while True:
                deadline = session.next_deadline()
                if deadline is not None and self._loop.time() >= deadline:
                    self._tick()
                if self.work is not None:
                    self.work.changed.clear()
                    self.work.fill(session)
                self._request_key_rotation()
                await self._flush()
                await self._handle_events()
                if session.closed:
                    break
                await self._receive_until(session.next_deadline())
        except asyncio.CancelledError:
            await self._shut_down()
            raise
        finally:
            if self._recv is not None:
                self._recv.cancel()
            try:
                await self.transport.close()
            except Exception:  # the connection is over either way; say why it was untidy
                log.debug("transport_close_failed", exc_info=True)
            structlog.contextvars.unbind_contextvars("session_id")
            self.status.write("disconnected", server=str(self.server))
        assert self.closed is not None  # a closed session always emitted Closed
        return ConnectionOutcome(self.server, self.accepted, self.closed)

    def _tick(self) -> None:
        """Tick the session; a heartbeat it sends now carries the work's facts, gathered here.

        Gathering reads the spool (disk I/O) and counts the heartbeat as sent, so it runs
        only when the core says one is due, outside the core.
        """
        now = self._loop.time()
        heartbeat = self.work.heartbeat() if self.work is not None and self.session.heartbeat_due(now) else None
        self.session.tick(now, heartbeat)

    def _request_key_rotation(self) -> None:
        """Once per session: ask to move to the next key if a rotation waits (ADR 0024)."""
        if (
            self.rotator is None
            or self._rotation_sent
            or self.session.state not in (CollectorState.ENABLED, CollectorState.DISABLED)
            or not isinstance(self.transport, SealedTransport)
        ):
            return
        rotation = self.rotator.request(self.identity, self.identity.instance_uid, self.transport.handshake_hash)
        if rotation is not None and self.session.send_key_rotation(rotation):
            self._rotation_sent = True

    async def _receive_until(self, deadline: float | None) -> None:
        """Feed the session the next frame, or nothing if `deadline` passes first."""
        session = self.session
        if self._recv is None:
            self._recv = asyncio.ensure_future(self.transport.recv())
        waiters: set[asyncio.Future[Any]] = {self._recv}
        work_changed = None
        if self.work is not None:
            work_changed = asyncio.ensure_future(self.work.changed.wait())
            waiters.add(work_changed)
        timeout = None if deadline is None else max(0.0, deadline - self._loop.time())
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if work_changed is not None:
                work_changed.cancel()
        if self._recv not in done:
            if not done:
                self._tick()
            return  # a deadline, or work to send: the caller's loop handles both
        recv, self._recv = self._recv, None
        try:
            data = recv.result()
        except RemoteProtocolError as exc:
            session.fail(exc.reason, exc.message)
            return
        except TransportError as exc:
            self._transport_error = str(exc)
            session.connection_lost()
            return
        if data is None:
            session.connection_lost()
            return
        self._heard_from_server = True
        try:
            message = decode_server_message(data)
        except RemoteProtocolError as exc:
            session.fail(exc.reason, exc.message)
            return
        session.receive(message, self._loop.time())
        if self.work is not None and message.HasField("heartbeat_ack"):
            self.work.heartbeat_acked()

    async def _flush(self) -> None:
        for message in self.session.data_to_send():
            message.sent_at_unix_ms = int(self._wall_clock() * 1000)
            try:
                await self.transport.send(message.SerializeToString())
            except TransportError as exc:
                self._transport_error = str(exc)
                self.session.connection_lost()
                return
            if message.HasField("heartbeat"):
                self.status.refresh()

    async def _handle_events(self) -> None:
        for event in self.session.events_received():
            if isinstance(event, Accepted):
                self._on_accepted(event)
            elif isinstance(event, StateChanged):
                self._on_state_changed(event)
            elif isinstance(event, Closed):
                self._on_closed(event)
            elif isinstance(event, RotationReceived) and isinstance(self.transport, SealedTransport):
                self.transport.rotation_received(event.rotation)
                if event.rotation.HasField("key_rotation") and self.rotator is not None:
                    self.rotator.result(event.rotation.key_rotation)
                    self.status.fingerprint = self.rotator.identity.fingerprint
            if self.work is not None:
                await self.work.on_event(event)

    def _on_accepted(self, event: Accepted) -> None:
        self.accepted = True
        structlog.contextvars.bind_contextvars(session_id=event.session_id)
        if self.rotator is not None:
            self.rotator.accepted(self.identity)
            self.status.fingerprint = self.rotator.identity.fingerprint
        log.info(
            "session_accepted",
            server_instance=event.server_instance,
            fingerprint=event.fingerprint,
        )
        if event.fingerprint and event.fingerprint != self.identity.fingerprint:
            log.warning(
                "fingerprint_mismatch",
                ours=self.identity.fingerprint,
                server_sees=event.fingerprint,
                advice="the key the server received is not this collector's; check for a proxy "
                "rewriting the connection",
            )
        try:
            if self.identity_store.save_binding(self.identity, event.server_instance):
                log.info("server_binding_saved", server_instance=event.server_instance)
        except OSError as exc:
            log.error(
                "server_binding_save_failed",
                server_instance=event.server_instance,
                error=str(exc),
                path=str(self.identity_store.state_path),
            )

    def _on_state_changed(self, event: StateChanged) -> None:
        log.info(
            "collector_state_changed",
            state=event.state.value,
            reason=event.reason,
            changed_by=event.changed_by,
        )
        if event.state is not CollectorState.PENDING and self.on_registered is not None:
            self.on_registered(event.state)
        self.status.write(
            STATUS_BY_STATE[event.state],
            server=str(self.server),
            session_id=self.session.session_id,
            server_instance=self.session.server_instance,
        )

    def _on_closed(self, event: Closed) -> None:
        self.closed = event
        if self.rotator is not None and not self.accepted and event.by_server:
            self.rotator.refused(self.identity, event.reason)
        if self._transport_error and not self._heard_from_server:
            # Never reached the server. gRPC connects lazily, so its refused connections
            # and failed TLS handshakes surface here rather than in open_transport; log
            # them as every transport logs a failed connect.
            log.warning("connection_failed", error=self._transport_error)
            return
        error = {"error": self._transport_error} if self._transport_error else {}
        log.info(
            "session_closed",
            reason=reason_name(event.reason),
            message=event.message,
            retry=event.retry,
            retry_after=event.retry_after,
            by_server=event.by_server,
            **error,
        )

    async def _shut_down(self) -> None:
        """Say goodbye (Disconnect CLIENT_SHUTDOWN) if the session got that far."""
        self.session.shutdown()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._flush()
        await self._handle_events()


def reason_name(reason: int) -> str:
    """The enum name of a disconnect reason; the number for one a newer server added."""
    try:
        return agent_pb2.DisconnectReason.Name(reason)
    except ValueError:
        return str(reason)
