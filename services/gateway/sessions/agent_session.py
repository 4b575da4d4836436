"""One collector session on the gateway: the runner every transport drives.

The transport (gRPC stream, WebSocket, TCP frames, HTTP polls) supplies an
`AgentStream`; the runner decodes -> feeds the I/O-free `ServerSession` -> writes what it
returns -> arms its deadline -> closes when told. The registry (or the watched cache)
decides handshakes; the hub delivers the registry's later decisions. So there is one
session logic for all transports.

Everything that reaches the session (frames, admin decisions, its deadline, shutdown) is
delivered to the runner and handled by one worker task at a time, so the core is only
ever touched from one task; the worker exists only while there is something to handle,
so an idle session costs its state and nothing running (issue 13, item 2). One item is
handled at a time, to the end: a result batch is committed and acked (or throttled)
before the next item is looked at. That is what makes draining safe: when the gateway
drains, the worker checks between items and closes with Disconnect(SHUTTING_DOWN), so a
commit is never cut in half by the shutdown.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from outpost import errors
from outpost.access_key import AccessKey
from outpost.agent.v1 import agent_pb2
from outpost.session import codec, handshake
from outpost.session.errors import RemoteProtocolError
from outpost.session.server import (
    AuthDecision,
    AuthenticationRequested,
    ChallengeRequested,
    HeartbeatReceived,
    JobUpdateReceived,
    KeyRotationReceived,
    ResultBatchReceived,
    ServerSession,
    ServerSessionConfig,
    ServerState,
    SessionAccepted,
    SessionClosed,
    StateEntered,
    WorkRefused,
)
from services.gateway import metrics
from services.gateway.access_keys import AccessKeysReplaced, ServerKeysChanged
from services.gateway.sessions import local_verification
from services.gateway.sessions.admission import host_of
from services.gateway.sessions.collector_status import clock_skew_ms, heartbeat_heard, hello_spool
from services.gateway.sessions.context import AgentStream, GatewayContext, Shutdown
from services.gateway.sessions.hub import (
    ChangeKind,
    CheckIntervalChanged,
    CollectorChange,
    LiveSession,
    RunCancelled,
    RunsAvailable,
    Superseded,
)
from services.gateway.sessions.sealed import GatewaySeal
from services.gateway.sessions.work import TERMINAL_STATES, SessionWork
from services.gateway.transports.sealed import SealedAgentStream, new_seal

log = structlog.get_logger(__name__)

R = agent_pb2.DisconnectReason
INBOX_SIZE = 16
SEND_TIMEOUT_SECONDS = 10.0
# Closes of a session that never got in which only a broken or hostile peer causes: each
# counts against its address's failed-handshake ceiling (handshake time-outs do not: a
# slow link is not an attack, and the unauthenticated bound already covers idle peers).
GARBAGE_REASONS = frozenset(
    {R.DISCONNECT_REASON_PROTOCOL_ERROR, R.DISCONNECT_REASON_MALFORMED_FRAME, R.DISCONNECT_REASON_FRAME_TOO_LARGE}
)
# A sealed handshake refused before any Hello (no valid access key, a message that did not
# decrypt) counts the same way: an address trying keys is throttled like one sending garbage.
SEALED_REFUSAL_REASONS = frozenset({R.DISCONNECT_REASON_ACCESS_KEY_REFUSED, R.DISCONNECT_REASON_AUTHENTICATION_FAILED})

UNAVAILABLE_MESSAGE = "the server cannot decide the handshake right now; retrying later helps"
UNAVAILABLE_RETRY_AFTER = 5
"""Seconds a collector is told to wait when the registry cannot decide (down, or this
gateway's watch is behind and the registry does not answer): a hint, so a fleet does not
hammer a registry that is coming back."""

# Registry refusals charged as failed handshakes (ADR 0011): a wrong password or key, and a
# refused enrollment token (ADR 0022), so tokens cannot be guessed at any speed.
CHARGED_REFUSALS = frozenset({R.DISCONNECT_REASON_AUTHENTICATION_FAILED, R.DISCONNECT_REASON_ENROLLMENT_REFUSED})


@dataclass(frozen=True)
class _PeerClosed:
    error: RemoteProtocolError | None = None


class _DeadlineDue:
    """The session's deadline passed (from the shared timer wheel): tick the core."""


DEADLINE_DUE = _DeadlineDue()


async def run_session(raw: AgentStream, ctx: GatewayContext) -> None:
    """Serve one connection whose transport hands frames out by `recv()`; never raises.

    gRPC and WebSocket run each connection in a task of their own (the library's handler);
    that task reads frames and hands them to the runner until either side ends the
    session, then waits until the runner has closed it. Every streaming connection is
    sealed (ADR 0019): the runner sees envelopes only once the Noise handshake confirmed
    the collector's access key. TCP drives the same runner from protocol callbacks, with
    no task at all (`start_pushed_session`).
    """
    loop = asyncio.get_running_loop()
    session_id = secrets.token_hex(8)
    structlog.contextvars.bind_contextvars(session_id=session_id, transport=raw.transport, remote=raw.remote_address)
    metrics.SESSIONS_OPENED.labels(raw.transport).inc()
    seal = new_seal(ctx, raw.transport)
    stream = SealedAgentStream(raw, seal, loop.time)
    runner = SessionRunner(stream, ctx, session_id, loop, seal=seal, context=contextvars.copy_context())
    try:
        await runner.serve_pulled(stream)
    finally:
        structlog.contextvars.unbind_contextvars("session_id", "transport", "remote", "collector")


def start_pushed_session(raw: AgentStream, ctx: GatewayContext) -> tuple[SessionRunner, SealedAgentStream]:
    """A session for a transport that pushes frames (TCP's protocol callbacks): no task until there is work.

    The transport calls `stream.open(frame)` per frame, writes the handshake replies it
    returns, hands the envelope to `runner.frame_received`, and `runner.peer_closed` when
    the connection ends; the runner ends the connection through `raw.close()`.
    """
    loop = asyncio.get_running_loop()
    session_id = secrets.token_hex(8)
    context = contextvars.Context()
    bind = structlog.contextvars.bind_contextvars
    context.run(bind, session_id=session_id, transport=raw.transport, remote=raw.remote_address)
    metrics.SESSIONS_OPENED.labels(raw.transport).inc()
    seal = new_seal(ctx, raw.transport)
    stream = SealedAgentStream(raw, seal, loop.time)
    runner = SessionRunner(stream, ctx, session_id, loop, seal=seal, context=context)
    context.run(runner.start)
    return runner, stream


class SessionRunner:
    """One session's state and the steps every transport drives: admit, handle, flush.

    An idle session owns no task, no queue and no timer (issue 13, item 2). What reaches
    it (a frame, an admin decision, a dispatch notice, its deadline, the drain) is
    `deliver`ed: kept in a deque made on first use, and handled by a worker task that
    exists only while there is something to handle. One worker at a time, one item at a
    time, to the end: a result batch is committed and acked (or throttled) before the next
    item is looked at, and the core is only ever touched from that worker. That is what
    makes draining safe: when the gateway drains, the worker checks between items and
    closes with Disconnect(SHUTTING_DOWN), so a commit is never cut in half.

    Frames are bounded: with INBOX_SIZE of them waiting, the transport stops reading
    (a pulled stream's reader waits; a pushed one's reading is paused) until the worker
    has caught up. The session's deadline (handshake, then liveness) lives in the
    gateway's shared `TimerWheel`, re-armed after each item.

    HTTP polling creates the runner with `polling=True`: nothing runs between polls; per
    poll it calls `admit()` once, then `handle()` for each envelope and `drain_inbox()`
    item, `tick()` and `flush()` (see transports/http_poll.py).
    `seal` is the connection's sealed session (the transport runs it): its `binding` goes
    into the proof check and to the registry. A `polling` session's heartbeat interval is
    the check interval, not the registry's (a polling collector is heard from once per
    check-in), and a change of the check interval changes both in its ConfigUpdate.
    """

    def __init__(
        self,
        stream: AgentStream,
        ctx: GatewayContext,
        session_id: str,
        loop: asyncio.AbstractEventLoop,
        *,
        polling: bool = False,
        seal: GatewaySeal | None = None,
        context: contextvars.Context | None = None,
    ) -> None:
        self.stream = stream
        self.seal = seal
        """The session's sealing (None only in tests of the unsealed loop): what the handshake proved."""
        self.ctx = ctx
        self.loop = loop
        self.started = loop.time()
        self.core = ServerSession(
            ServerSessionConfig(
                server_instance=ctx.server_instance,
                handshake_timeout=ctx.handshake_timeout,
                heartbeat_interval=ctx.heartbeat_interval,
                password_parameters=True,
            ),
            session_id=session_id,
            nonce=handshake.new_nonce(int(time.time() * 1000)),
            now=loop.time(),
        )
        self._context = context
        """The session's log context (session id, transport, collector): every worker runs in it."""
        self._pending: collections.deque[object] | None = None
        self._frames_waiting = 0
        self._worker: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[Any] | None = None
        """A pulled stream's reading task while it reads; interrupted when the session ends."""
        self._room: asyncio.Future[None] | None = None
        self._paused: Callable[[bool], None] | None = None
        """A pushed stream's reading switch: False pauses reading, True resumes it."""
        self._done: asyncio.Future[None] | None = None
        self._ended = False
        self.live: LiveSession | None = None
        self.work: SessionWork | None = None
        self.unauthenticated = False
        self.close_reason = ""
        self.polling = polling
        # Heard before the session is accepted too (the Hello), so the LiveSession starts right.
        self.heard_at = time.time()
        self.clock_skew_ms = 0
        self.collector_public_key = b""
        """The key the session was accepted with (the core lets its Hello go)."""
        self.announced_server_key: bytes | None = None
        """The server key this session last announced to its collector (ADR 0024)."""
        self.announced_access_key: str | None = None
        """The key id of the access key this session last handed its collector (ADR 0024)."""
        self.verified_locally = False
        """Accepted from the watched cache (ADR 0034): the registry learns of it by the session report."""
        self.deferred = False
        """The Challenge already went to the registry (and was counted as deferred)."""

    # --- driving: pulled streams, pushed streams, deliveries, the deadline -------------------
    def start(self) -> None:
        """Admit the connection and arm its handshake deadline; a refusal is sent by a worker."""
        self.ctx.connections[self.core.session_id] = self.deliver
        if self.admit():
            self._arm_deadline()
        else:
            self._wake()

    async def serve_pulled(self, stream: AgentStream) -> None:
        """Read `stream` in the calling task until the session ends; then wait until it is closed."""
        self._reader = asyncio.current_task()
        self.start()
        try:
            await self._read(stream)
        except asyncio.CancelledError:
            if not self._ended or self._reader is None:
                self._reader = None
                await self._abandon()
                raise
            self._reader.uncancel()  # the runner ended the session while the reader waited
        finally:
            self._reader = None
        if not self._ended:
            self._done = self.loop.create_future()
            try:
                await self._done
            except asyncio.CancelledError:
                await self._abandon()
                raise

    async def _read(self, stream: AgentStream) -> None:
        while not self._ended:
            try:
                data = await stream.recv()
            except RemoteProtocolError as exc:
                self.deliver(_PeerClosed(exc))
                return
            except (ConnectionError, asyncio.IncompleteReadError):
                self.deliver(_PeerClosed())
                return
            if data is None:
                self.deliver(_PeerClosed())
                return
            if self.frame_received(data):
                self._room = self.loop.create_future()
                try:
                    await self._room
                finally:
                    self._room = None

    def frame_received(self, data: bytes) -> bool:
        """A frame for the core; True when the transport should stop reading until there is room."""
        self._frames_waiting += 1
        self.deliver(data)
        return self._frames_waiting >= INBOX_SIZE

    def reading_switch(self, switch: Callable[[bool], None]) -> None:
        """A pushed stream's way to pause (False) and resume (True) reading, for the bound on frames."""
        self._paused = switch

    def peer_closed(self, error: RemoteProtocolError | None = None) -> None:
        """A pushed stream's connection ended (or sent what cannot be read)."""
        if not self._ended:
            self.deliver(_PeerClosed(error))

    def in_context(self, callback: Callable[..., None], *args: object) -> None:
        """Run a transport callback in the session's log context (a pushed stream's callbacks run outside it)."""
        if self._context is None:
            callback(*args)
        else:
            self._context.run(callback, *args)

    def deliver(self, item: object) -> None:
        """Hand the session an item (same event loop): hub decisions, dispatch notices, frames, the drain."""
        if self._ended:
            return
        if self._pending is None:
            self._pending = collections.deque()
        self._pending.append(item)
        if not self.polling:
            self._wake()

    def deadline_due(self) -> None:
        """From the timer wheel: the core's deadline passed."""
        self.deliver(DEADLINE_DUE)

    def _wake(self) -> None:
        if self._worker is None and not self._ended:
            self._worker = self.loop.create_task(self._work(), context=self._context)

    def _next(self) -> object | None:
        pending = self._pending
        if not pending:
            self._pending = None
            return None
        item = pending.popleft()
        if not pending:
            self._pending = None  # an empty deque is ~0.6 KiB an idle session need not keep
        if isinstance(item, bytes):
            self._frames_waiting -= 1
            if self._frames_waiting == INBOX_SIZE - 1:
                self._make_room()
        return item

    def _make_room(self) -> None:
        if self._room is not None and not self._room.done():
            self._room.set_result(None)
        if self._paused is not None:
            self._paused(True)

    async def _work(self) -> None:
        """Handle what was delivered, one item at a time, then exit: the session is idle again."""
        try:
            while True:
                await self.flush()
                if self.core.closed:
                    await self._end()
                    return
                if self.ctx.draining:
                    self.core.shutdown()  # between items: whatever was handled is acked or not, whole
                    continue
                item = self._next()
                if item is None:
                    break
                if item is DEADLINE_DUE:
                    self.core.tick(self.loop.time())
                else:
                    await self.handle(item)
        except Exception:
            log.exception("session_crashed")
            await self._end()
            return
        finally:
            self._worker = None
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        if not self._ended:
            self.ctx.timers.schedule(self, self.core.next_deadline())

    async def _end(self) -> None:
        """The session is over: stop reading, leave the hub, close the connection; once."""
        if self._ended:
            return
        self._ended = True
        self.ctx.timers.cancel(self)
        self._pending = None
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        self.ctx.connections.pop(self.core.session_id, None)
        try:
            await self.cleanup()
        finally:
            if self._done is not None and not self._done.done():
                self._done.set_result(None)

    async def _abandon(self) -> None:
        """The task serving the connection was cancelled (the gateway is stopping): end without a worker."""
        worker = self._worker
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()
        await self._end()

    def admit(self) -> bool:
        """Apply the gateway's admission limits; False means the core is already closing."""
        admission = self.ctx.admission
        blocked = admission.address_blocked(host_of(self.stream.remote_address), admission.clock())
        if self.ctx.draining:
            self.core.shutdown()
        elif blocked is not None:
            metrics.HANDSHAKES_RATE_LIMITED.labels(blocked.scope).inc()
            self.core.fail(R.DISCONNECT_REASON_RATE_LIMITED, blocked.message, blocked.retry_after)
        elif not admission.try_begin():
            self.core.fail(
                R.DISCONNECT_REASON_TOO_MANY_CONNECTIONS, "too many connections in the handshake; try again shortly"
            )
        else:
            self.unauthenticated = True
            metrics.UNAUTHENTICATED.inc()
            return True
        return False

    def tick(self) -> None:
        self.core.tick(self.loop.time())

    def drain_inbox(self) -> list[object]:
        """Items delivered since the last call (polling: handled at the next poll)."""
        items = list(self._pending or ())
        self._pending = None
        return items

    async def handle(self, item: object) -> None:
        """Feed one frame, admin decision, dispatch notice or shutdown to the core."""
        now = self.loop.time()
        if isinstance(item, bytes):
            metrics.FRAMES_RECEIVED.labels(self.stream.transport).inc()
            try:
                message = codec.decode_collector_message(item)
            except RemoteProtocolError as exc:
                self.core.fail(exc.reason, exc.message)
                return
            self._heard(message.sent_at_unix_ms)
            self.core.receive(message, now)
        elif isinstance(item, _PeerClosed):
            if item.error is not None:
                self.core.fail(item.error.reason, item.error.message)
            else:
                self.core.connection_lost()
        elif isinstance(item, CollectorChange):
            if item.kind is ChangeKind.REMOVED:
                self.core.removed(item.reason, item.revision)
            else:
                self.core.state_changed(item.state, item.reason, item.changed_by, item.revision)
        elif isinstance(item, Superseded):
            self.core.fail(
                R.DISCONNECT_REASON_SUPERSEDED,
                f"superseded by a newer session {item.by_session_id} of this collector",
            )
        elif isinstance(item, Shutdown):
            self.core.shutdown()
        elif isinstance(item, RunsAvailable) and self.work is not None:
            await self.work.claim(self.core)
        elif isinstance(item, RunCancelled):
            self.core.cancel_job(item.job_run_id, item.reason)
        elif isinstance(item, CheckIntervalChanged):
            self.core.update_config(self._config_update())
        elif isinstance(item, ServerKeysChanged):
            self._announce_server_key()
        elif isinstance(item, AccessKeysReplaced):
            self._announce_access_key()

    def _announce_access_key(self) -> None:
        """Hand the collector the key that replaced the one its handshake used (ADR 0024).

        Sent once per successor per session, over the sealed channel only. The text pins
        the server's current key, as `access-keys create` does; the collector keeps every
        key it pinned before.
        """
        if self.seal is None or self.seal.channel is None or self.seal.grant is None:
            return
        successor = self.ctx.access_keys.successor(self.seal.grant.key_id)
        if successor is None or successor.key_id == self.announced_access_key:
            return
        text = AccessKey(successor.key_id, successor.psk, self.ctx.server_keys.public_key()).encode()
        if self.core.rotate(agent_pb2.Rotation(access_key=agent_pb2.AccessKeyUpdate(access_key_text=text))):
            self.announced_access_key = successor.key_id
            log.info(
                "access_key_update_sent",
                access_key=successor.name,
                key_id=successor.key_id,
                replaced_key_id=self.seal.grant.key_id,
            )

    def _announce_server_key(self) -> None:
        """Tell the collector the newest server key when its handshake used an older one (ADR 0024).

        Sent once per key per session, over the sealed channel only: the announcement is
        what lets a collector pin the next key before the current one is retired.
        """
        if self.seal is None or self.seal.channel is None:
            return
        announcement = self.ctx.server_keys.announcement()
        if announcement is None or announcement.public_key in (self.seal.server_public_key, self.announced_server_key):
            return
        rotation = agent_pb2.Rotation(
            server_key=agent_pb2.ServerKeyAnnouncement(
                public_key=announcement.public_key,
                activates_at_unix_ms=int(announcement.activates_at.timestamp() * 1000),
            )
        )
        if self.core.rotate(rotation):
            self.announced_server_key = announcement.public_key
            log.info(
                "server_key_announced",
                fingerprint=handshake.fingerprint(announcement.public_key),
                activates_at=announcement.activates_at.isoformat(),
            )

    async def _rotate_collector_key(self, rotation: agent_pb2.KeyRotation) -> None:
        """Have the registry decide the collector's KeyRotation, then tell the collector (ADR 0024).

        The gateway adds what only it knows (the session id, the handshake hash of the sealed
        session it terminated, the key the session authenticated with), so the signatures are
        checked against this session and no other. The session goes on whatever the answer.
        """
        binding = self.seal.binding if self.seal is not None else None
        if binding is None or not self.collector_public_key or self.live is None:
            result = agent_pb2.KeyRotationResult(reason="a key rotation is accepted only inside a sealed session")
        else:
            if self.verified_locally:
                # The registry checks the rotation against the session on record: this one,
                # once the batched report that tells it so has gone (ADR 0034).
                await self.ctx.reporter.flush()
            try:
                result = await self.ctx.registry.rotate_collector_key(
                    instance_uid=self.live.instance_uid,
                    old_public_key=self.collector_public_key,
                    rotation=rotation,
                    handshake_hash=binding.handshake_hash,
                    session_id=self.core.session_id,
                    gateway_id=self.ctx.gateway_id,
                    remote_address=self.stream.remote_address,
                )
            except errors.OutpostError as exc:
                log.warning("registry_unavailable", error=type(exc).__name__, details=str(exc))
                result = agent_pb2.KeyRotationResult(reason="the server cannot decide the rotation now; retry later")
        if result.accepted:
            log.info("collector_key_rotated", fingerprint=result.fingerprint)
        else:
            log.warning("collector_key_rotation_refused", reason=result.reason)
        self.core.rotate(agent_pb2.Rotation(key_rotation=result))

    def _check_seconds(self) -> int:
        return self.ctx.dispatcher.check_interval.seconds

    def _config_update(self) -> agent_pb2.ConfigUpdate:
        """The settings the collector follows, as this gateway holds them now.

        Every session gets the check interval (from its first session on: the gateway
        accepts none before it read the stored value); a polling one also gets it as its
        heartbeat interval, so its heartbeats do not make it poll more often than that.
        """
        interval = self.ctx.dispatcher.check_interval
        return agent_pb2.ConfigUpdate(
            collector_check_minutes=interval.minutes,
            heartbeat_interval_seconds=interval.seconds if self.polling else 0,
        )

    def heard(self) -> None:
        """The collector checked in without an envelope (an empty poll): it is alive."""
        self._heard(0)

    def _heard(self, sent_at_unix_ms: int) -> None:
        self.heard_at = time.time()
        skew = clock_skew_ms(sent_at_unix_ms, self.heard_at)
        if skew is not None:
            self.clock_skew_ms = skew
        if self.live is not None:
            self.live.last_message_at = self.heard_at
            self.live.clock_skew_ms = self.clock_skew_ms

    async def flush(self) -> None:
        """Send what the core produced, then act on its events (which may produce more)."""
        while True:
            for message in self.core.data_to_send():
                message.sent_at_unix_ms = int(time.time() * 1000)  # the core keeps no clock; skew evidence
                try:
                    async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                        await self.stream.send(message.SerializeToString())
                except (TimeoutError, ConnectionError, OSError):
                    self.core.connection_lost()
                    break
            events = self.core.events_received()
            if not events:
                return
            for event in events:
                await self._on_event(event)

    async def _on_event(self, event: object) -> None:
        if isinstance(event, ChallengeRequested):
            await self._challenge(event)
        elif isinstance(event, AuthenticationRequested):
            decision = await self._decide_handshake(event)
            if self.polling and decision.accepted:
                decision = dataclasses.replace(decision, heartbeat_interval=float(self._check_seconds()))
            self.core.authenticated(decision, self.loop.time())
            metrics.HANDSHAKE_SECONDS.observe(self.loop.time() - self.started)
        elif isinstance(event, SessionAccepted):
            self._end_unauthenticated()
            structlog.contextvars.bind_contextvars(collector=event.name)
            if event.hello is not None:
                self.collector_public_key = event.hello.public_key
            zone = event.zone  # the registered zone: dispatch, inventory and sealing follow it
            self.live = LiveSession(
                session_id=self.core.session_id,
                instance_uid=event.instance_uid,
                name=event.name,
                zone=zone,
                transport=self.stream.transport,
                remote_address=self.stream.remote_address,
                opened_at=time.time(),
                deliver=self.deliver,
                state=event.state,
                last_message_at=self.heard_at,
                clock_skew_ms=self.clock_skew_ms,
                spool=hello_spool(event.hello),
                check_in_seconds=self._check_seconds() if self.polling else 0,
            )
            self.work = SessionWork(self.ctx.work, event.instance_uid, event.name, zone, self.deliver)
            self.core.update_config(self._config_update())
            self._announce_server_key()
            self._announce_access_key()
            newest = self.ctx.hub.attach(self.live)
            if self.verified_locally:
                self.ctx.reporter.connected(self.live)
            metrics.SESSIONS.labels(self.stream.transport).inc()
            if newest is not None:
                self.deliver(newest)
            log.info("session_opened", state=event.state.value)
        elif isinstance(event, StateEntered):
            if self.live is not None:
                self.live.state = event.state
                log.info("session_state_changed", state=event.state.value, reason=event.reason)
            if event.state is ServerState.ENABLED:
                self.deliver(RunsAvailable())
        elif isinstance(event, HeartbeatReceived) and self.live is not None:
            heartbeat_heard(self.live, event.heartbeat)
        elif isinstance(event, JobUpdateReceived) and self.work is not None:
            if event.update.state in TERMINAL_STATES and self.live is not None:
                # Its lease is not ours to renew, even while heartbeats still list it.
                self.live.running_job_run_ids -= {event.update.job_run_id}
                self.live.finished_job_run_ids |= {event.update.job_run_id}
            await self.work.job_update(self.core, event.update)
        elif isinstance(event, ResultBatchReceived) and self.work is not None:
            await self.work.result_batch(self.core, event.batch, self.clock_skew_ms)
        elif isinstance(event, KeyRotationReceived):
            await self._rotate_collector_key(event.rotation)
        elif isinstance(event, WorkRefused):
            metrics.WORK_REFUSED.labels(event.kind).inc()
            log.warning("work_refused", kind=event.kind, job_run_id=event.job_run_id, state=event.state.value)
        elif isinstance(event, SessionClosed):
            self.close_reason = event.message
            reason = R.Name(event.reason) if event.reason in R.values() else str(event.reason)
            metrics.SESSIONS_CLOSED.labels(reason).inc()
            if self.live is None and not event.by_peer:
                if event.reason in GARBAGE_REASONS:
                    self._count_failure("protocol_error", None)
                elif event.reason in SEALED_REFUSAL_REASONS and not self.core.hello_received:
                    self._count_failure("sealed_handshake", None)
            log.info("session_closed", reason=reason, message=event.message, by_peer=event.by_peer)

    async def _challenge(self, event: ChallengeRequested) -> None:
        """Challenge with the service-password parameters on record (ADR 0025).

        Only a registered collector presenting the key on record has any. A known one's come
        from the watched cache (ADR 0034); anyone else's from the registry. A registry that
        cannot answer ends the handshake as UNAVAILABLE, as for the decision itself: a
        challenge without them would only be refused later.
        """
        hello = event.hello
        cache = self.ctx.collector_cache
        entry = cache.get(hello.instance_uid) if cache is not None else None
        if entry is not None:
            self.core.challenge(local_verification.challenge_parameters(entry, hello.public_key, datetime.now(UTC)))
            return
        if cache is not None:
            self.deferred = True
            metrics.HANDSHAKES_DEFERRED.labels("stale" if not cache.fresh() else "unknown").inc()
        lane = self.ctx.registry_lanes.lane(cache is None or cache.knows(hello.instance_uid))
        try:
            async with asyncio.timeout(self.ctx.handshake_timeout), lane.slot():
                parameters = await self.ctx.registry.password_parameters(
                    instance_uid=hello.instance_uid, public_key=hello.public_key
                )
        except local_verification.LaneFull as full:
            decision = local_verification.busy_decision(full)
            self.core.fail(decision.refusal, decision.message, decision.retry_after)
            return
        except (errors.OutpostError, TimeoutError) as exc:
            log.warning("registry_unavailable", error=type(exc).__name__, details=str(exc))
            self.core.fail(R.DISCONNECT_REASON_UNAVAILABLE, UNAVAILABLE_MESSAGE, UNAVAILABLE_RETRY_AFTER)
            return
        self.core.challenge(parameters)

    async def _decide_handshake(self, event: AuthenticationRequested) -> AuthDecision:
        """The failed-handshake limits first (see admission.py), then the registry.

        The proof is checked here too, so a failure is charged to a collector key only when
        the key's holder made it; a bad proof is charged to the address alone.
        """
        admission = self.ctx.admission
        now = admission.clock()
        host = host_of(self.stream.remote_address)
        public_key = event.hello.public_key
        binding = self.seal.binding if self.seal is not None else None
        proven = handshake.verify(
            event.hello,
            event.nonce,
            self.ctx.server_instance,
            event.signature,
            binding.handshake_hash if binding is not None else b"",
        )
        blocked = admission.key_blocked(host, public_key, now) if proven else admission.address_blocked(host, now)
        if blocked is not None:
            metrics.HANDSHAKES_RATE_LIMITED.labels(blocked.scope).inc()
            return AuthDecision(
                accepted=False,
                refusal=R.DISCONNECT_REASON_RATE_LIMITED,
                message=blocked.message,
                retry_after=blocked.retry_after,
            )
        decision = await self._authenticate(event, proven)
        if not decision.accepted and decision.refusal in CHARGED_REFUSALS:
            self._count_failure("refused" if proven else "bad_proof", public_key if proven else None)
        return decision

    def _count_failure(self, kind: str, public_key: bytes | None) -> None:
        admission = self.ctx.admission
        host = host_of(self.stream.remote_address)
        forgotten = admission.forgotten
        if public_key is None:
            admission.record_garbage(host, admission.clock())
        else:
            admission.record_refused(host, public_key, admission.clock())
        metrics.FAILED_HANDSHAKES.labels(kind).inc()
        metrics.FAILURES_FORGOTTEN.inc(admission.forgotten - forgotten)

    async def _authenticate(self, event: AuthenticationRequested, proven: bool) -> AuthDecision:
        """A known collector from the watched cache (ADR 0034); anything it cannot decide, the registry."""
        binding = self.seal.binding if self.seal is not None else None
        handshake_hash = binding.handshake_hash if binding is not None else b""
        access_key_id = binding.access_key_id if binding is not None else ""
        hello = event.hello
        cache = self.ctx.collector_cache
        entry = cache.get(hello.instance_uid) if cache is not None else None
        learned = None
        if entry is not None:
            attempt = local_verification.LocalAttempt(
                hello=hello,
                proven=proven,
                transcript=handshake.transcript(hello, event.nonce, self.ctx.server_instance, handshake_hash),
                password_parameters=event.password_parameters,
                password_proofs=event.password_proofs,
                access_key_id=access_key_id,
                remote_address=self.stream.remote_address,
                transport=self.stream.transport,
            )
            outcome, learned = local_verification.verify(
                entry,
                attempt,
                server_instance=self.ctx.server_instance,
                heartbeat_interval=self.ctx.heartbeat_interval,
                now=datetime.now(UTC),
            )
            if isinstance(outcome, AuthDecision):
                metrics.HANDSHAKES_VERIFIED_LOCALLY.inc()
                self.verified_locally = True
                log.info("collector_verified_locally", state=outcome.state.value, revision=outcome.revision)
                return outcome
            metrics.HANDSHAKES_DEFERRED.labels(outcome.reason).inc()
        elif cache is not None and not self.deferred:  # counted at the Challenge otherwise
            metrics.HANDSHAKES_DEFERRED.labels("stale" if not cache.fresh() else "unknown").inc()
        lane = self.ctx.registry_lanes.lane(cache is None or cache.knows(hello.instance_uid))
        unavailable = AuthDecision(
            accepted=False,
            refusal=R.DISCONNECT_REASON_UNAVAILABLE,
            message=UNAVAILABLE_MESSAGE,
            retry_after=UNAVAILABLE_RETRY_AFTER,
        )
        try:
            async with asyncio.timeout(self.ctx.handshake_timeout), lane.slot():
                decision = await self.ctx.registry.authenticate(
                    hello=hello,
                    nonce=event.nonce,
                    signature=event.signature,
                    remote_address=self.stream.remote_address,
                    gateway_id=self.ctx.gateway_id,
                    session_id=self.core.session_id,
                    transport=self.stream.transport,
                    access_key_id=access_key_id,
                    handshake_hash=handshake_hash,
                    password_parameters=event.password_parameters,
                    password_proofs=event.password_proofs,
                )
        except local_verification.LaneFull as full:
            return local_verification.busy_decision(full)
        except errors.OutpostError as exc:
            log.warning("registry_unavailable", error=type(exc).__name__, details=str(exc))
            return unavailable
        except TimeoutError:
            log.warning("registry_busy", waited=self.ctx.handshake_timeout)
            return unavailable
        if (
            entry is not None
            and learned is not None
            and cache is not None
            and decision.accepted
            and (decision.state, decision.revision) == (entry.state, entry.revision)
        ):
            cache.learned(entry, learned)  # what the registry just recorded; the next one is local
        return decision

    def _end_unauthenticated(self) -> None:
        if self.unauthenticated:
            self.unauthenticated = False
            self.ctx.admission.end()
            metrics.UNAUTHENTICATED.dec()

    async def cleanup(self) -> None:
        self._end_unauthenticated()
        if self.live is not None:
            self.ctx.hub.detach(self.live.session_id, self.live.instance_uid)
            metrics.SESSIONS.labels(self.stream.transport).dec()
            self.ctx.reporter.disconnected(self.live.instance_uid, self.live.session_id, self.close_reason)
        try:
            async with asyncio.timeout(2):
                await self.stream.close(self.close_reason or "session closed")
        except (TimeoutError, ConnectionError, OSError):
            pass
