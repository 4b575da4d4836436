"""The HTTP polling transport: `POST /v1/poll` for networks that allow only HTTP(S).

Each poll carries the collector's envelopes in a `PollRequest` and gets the server's in a
`PollResponse`; a session token ties the polls of one session together. The session
itself is the same `SessionRunner` every transport drives, stepped once per poll instead
of by a read loop: envelopes in, then whatever the hub delivered since the last poll
(admin decisions, queued runs), deadlines, then everything the core produced goes back
in the response. A polling collector is heard from once per `collector_check_minutes`, so
its session's liveness is measured in check intervals, and a session that stops polling
expires after two of them. Every poll counts as hearing from it (an empty one too); the
wait each response names is kept on the session (`check_in_seconds`) and reported to the
registry, whose online rule gives a polling collector its check interval plus grace.
The time between two polls is the `outpost_gateway_poll_interval_seconds` histogram
(and a `poll_checked_in` debug line). A session that has not completed its handshake expires at the
handshake deadline (`--handshake-timeout`), so it holds an unauthenticated slot no longer
than a streaming connection would, and a first poll without a Hello opens no session.

Sessions live in this gateway's memory: a poll that reaches another replica (or this one
after a restart) with an unknown token is told to start a new session. Behind a load
balancer a collector's polls must therefore reach the gateway holding its session
(Ingress cookie affinity, the Service's `sessionAffinity: ClientIP`, docs/deploy.md): a
balancer that spreads polls round robin makes every session end at its second poll, so a
collector never gets past the handshake. Each token starts with a tag of the gateway that
issued it, so a poll carrying another gateway's token is told why and counted
(`outpost_gateway_polls_refused_total{reason="other_gateway"}`, a `poll_misrouted` log
line): the sign of a balancer without affinity.

Sealed (ADR 0019, required): a poll carries frames in `records` and gets frames back in
`records`. The first poll's first record opens the Noise handshake; its typed reply goes
back in the response, and XX message 3 comes with the next poll, followed by the Hello
record. Each record is stepped through the session's `GatewaySeal`; only envelopes reach
the runner, and everything the runner sends is sealed (or, before the keys exist, a typed
refusal). A first poll with cleartext `messages` (a collector from before sealing) is
refused with ACCESS_KEY_REFUSED in cleartext, so it can read why.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from google.protobuf.message import DecodeError

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import RemoteProtocolError
from outpost.session.noise.wire import refusal_reply
from outpost.session.server import HANDSHAKE_STATES
from services.gateway import metrics
from services.gateway.sessions.agent_session import SessionRunner
from services.gateway.sessions.context import GatewayContext
from services.gateway.sessions.sealed import UNSEALED_REFUSAL, GatewaySeal
from services.gateway.transports.client_address import TrustedProxies
from services.gateway.transports.sealed import count_failure, new_seal
from services.gateway.transports.websocket import request_client

log = structlog.get_logger(__name__)

POLL_PATH = "/v1/poll"
CONTENT_TYPE = "application/x-protobuf"
MAX_POLL_SESSIONS = 20_000
EXPIRY_SWEEP_SECONDS = 5.0
MIN_SWEEP_SECONDS = 0.25
MAX_STEPS_PER_POLL = 8
R = agent_pb2.DisconnectReason


class PollStream:
    """The runner's stream for one polling session: what it sends waits (sealed) for the response."""

    transport = "http_poll"

    def __init__(self, remote_address: str, seal: GatewaySeal, clock: Callable[[], float]) -> None:
        self.remote_address = remote_address
        self.seal = seal
        self._clock = clock
        self._outgoing: list[bytes] = []

    async def recv(self) -> bytes | None:
        raise RuntimeError("polling sessions are stepped per request, never read")

    async def send(self, data: bytes) -> None:
        self._outgoing.extend(self.seal.outgoing(data, self._clock()))

    def reply(self, frames: list[bytes]) -> None:
        """Handshake replies, in order with the records around them."""
        self._outgoing.extend(frames)

    async def close(self, reason: str) -> None:
        """Nothing to close: the next poll learns of the end from the Disconnect."""

    def take(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out


@dataclass
class _PollSession:
    runner: SessionRunner
    stream: PollStream
    expires_at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    polled_at: float | None = None
    """Loop time of the last poll once the session was accepted (None before)."""


class PollSessions:
    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx
        self._sessions: dict[str, _PollSession] = {}
        self._loop = asyncio.get_running_loop()
        self._tag = gateway_tag(ctx.gateway_id)

    def _unknown(self, token: str) -> agent_pb2.PollResponse:
        """A poll with a token this gateway does not hold: another gateway's, or an ended session's."""
        tag, dot, _ = token.partition(".")
        if dot and tag != self._tag:
            metrics.POLLS_REFUSED.labels("other_gateway").inc()
            log.info("poll_misrouted", advice="polls of one session must reach one gateway: enable session affinity")
            return _goodbye(
                "this poll session is held by another gateway: the load balancer must send a session's polls "
                "to one gateway (session affinity); start a new session"
            )
        metrics.POLLS_REFUSED.labels("unknown_session").inc()
        return _goodbye("unknown poll session (expired, or the gateway restarted); start a new session")

    @property
    def trusted_proxies(self) -> TrustedProxies:
        return self._ctx.trusted_proxies

    @property
    def check_seconds(self) -> int:
        return self._ctx.dispatcher.check_interval.seconds

    async def poll(self, request: agent_pb2.PollRequest, remote_address: str) -> agent_pb2.PollResponse:
        token = request.session_token
        if token:
            entry = self._sessions.get(token)
            if entry is None and self._ctx.draining:
                return _goodbye(
                    "gateway shutting down; reconnect to another gateway", R.DISCONNECT_REASON_SHUTTING_DOWN
                )
            if entry is None:
                return self._unknown(token)
        else:
            if not request.records and request.messages:
                # A collector from before sealed sessions: say why, in the cleartext it reads.
                metrics.HANDSHAKE_REFUSALS.labels("unsealed").inc()
                return _goodbye(UNSEALED_REFUSAL, R.DISCONNECT_REASON_ACCESS_KEY_REFUSED)
            if not request.records:
                # Nothing to start a session with: holding one would only hold a handshake slot.
                metrics.POLLS_REFUSED.labels("no_hello").inc()
                return _goodbye(
                    "a new polling session starts with a sealed handshake", R.DISCONNECT_REASON_PROTOCOL_ERROR
                )
            if len(self._sessions) >= MAX_POLL_SESSIONS:
                metrics.POLLS_REFUSED.labels("too_many_sessions").inc()
                return _goodbye(
                    "too many polling sessions on this gateway; try again later",
                    R.DISCONNECT_REASON_TOO_MANY_CONNECTIONS,
                    sealed=True,
                )
            token = f"{self._tag}.{secrets.token_urlsafe(24)}"
            entry = self._open(remote_address)
            self._sessions[token] = entry
        runner = entry.runner
        with structlog.contextvars.bound_contextvars(session_id=runner.core.session_id, transport=PollStream.transport):
            async with entry.lock:
                self._checked_in(entry)
                await self._receive(entry, request)
                if self._ctx.draining:
                    runner.core.shutdown()
                runner.tick()
                await runner.flush()
                # Acting on this poll can deliver more (an enable queues a claim): answer
                # with all of it now rather than one check interval later.
                for _ in range(MAX_STEPS_PER_POLL):
                    items = runner.drain_inbox()
                    if not items:
                        break
                    for item in items:
                        await runner.handle(item)
                    await runner.flush()
                out = entry.stream.take()
                entry.expires_at = self._expiry(runner)
                handshaking = runner.core.state in HANDSHAKE_STATES
                next_poll = 0 if handshaking else self.check_seconds
                if runner.live is not None:
                    runner.live.check_in_seconds = next_poll
            if runner.core.closed:
                await self._end(token)
                token = ""
        return agent_pb2.PollResponse(session_token=token, records=out, next_poll_seconds=next_poll)

    async def _receive(self, entry: _PollSession, request: agent_pb2.PollRequest) -> None:
        """Step this poll's frames through the seal; the envelopes they complete through the runner."""
        runner = entry.runner
        if request.messages:
            runner.core.fail(
                R.DISCONNECT_REASON_PROTOCOL_ERROR, "a sealed polling session carries records, not cleartext messages"
            )
            return
        for record in request.records:
            if self._ctx.draining or runner.core.closed:
                break  # between frames: the rest is not acked, and is resent elsewhere
            try:
                received = entry.stream.seal.receive(record, self._loop.time())
            except RemoteProtocolError as exc:
                count_failure(entry.stream.seal, exc)
                runner.core.fail(exc.reason, exc.message)
                break
            entry.stream.reply(received.replies)
            if received.envelope is not None:
                await runner.handle(received.envelope)

    def _checked_in(self, entry: _PollSession) -> None:
        """A poll of an accepted session: the collector is alive; measure its cadence."""
        runner = entry.runner
        if runner.live is None:
            return
        runner.heard()
        now = self._loop.time()
        if entry.polled_at is not None:
            since = now - entry.polled_at
            metrics.POLL_INTERVAL_SECONDS.observe(since)
            log.debug(
                "poll_checked_in",
                collector=runner.live.name,
                since_previous_seconds=round(since, 3),
                check_in_seconds=runner.live.check_in_seconds,
            )
        entry.polled_at = now

    def _open(self, remote_address: str) -> _PollSession:
        seal = new_seal(self._ctx, PollStream.transport)
        stream = PollStream(remote_address, seal, self._loop.time)
        session_id = secrets.token_hex(8)
        runner = SessionRunner(stream, self._ctx, session_id, self._loop, polling=True, seal=seal)
        metrics.SESSIONS_OPENED.labels(stream.transport).inc()
        runner.admit()
        return _PollSession(runner, stream, self._expiry(runner))

    def _expiry(self, runner: SessionRunner) -> float:
        """When to end the session if no poll comes: the handshake deadline until it is in."""
        if runner.core.state in HANDSHAKE_STATES:
            return runner.core.next_deadline() or self._loop.time()
        return self._loop.time() + 2 * self.check_seconds + 60

    async def _end(self, token: str) -> None:
        entry = self._sessions.pop(token, None)
        if entry is not None:
            await entry.runner.cleanup()

    async def expire(self) -> None:
        """Close sessions whose collector stopped polling (runs until cancelled).

        A session still in the handshake ends at the handshake deadline (HANDSHAKE_TIMEOUT,
        freeing its unauthenticated slot), so swept often enough for that deadline to hold.
        """
        sweep = min(EXPIRY_SWEEP_SECONDS, max(MIN_SWEEP_SECONDS, self._ctx.handshake_timeout / 4))
        while True:
            await asyncio.sleep(sweep)
            await self.expire_due(self._loop.time())

    async def expire_due(self, now: float) -> int:
        """End every session past its expiry at `now`; how many ended."""
        ended = 0
        for token, entry in list(self._sessions.items()):
            if entry.expires_at <= now and not entry.lock.locked():
                runner = entry.runner
                handshaking = runner.core.state in HANDSHAKE_STATES
                runner.core.tick(now)  # the core closes a late handshake with HANDSHAKE_TIMEOUT
                runner.core.connection_lost()
                await runner.flush()
                await self._end(token)
                metrics.POLL_SESSIONS_EXPIRED.labels("handshake" if handshaking else "accepted").inc()
                ended += 1
        return ended

    async def shutdown(self) -> None:
        """End every idle session: its next poll, here or elsewhere, starts a new one.

        A session answering a poll right now is left to it: the poll sees the drain between
        frames, answers with what it acked and a Disconnect(SHUTTING_DOWN), and ends itself.
        """
        for token, entry in list(self._sessions.items()):
            if not entry.lock.locked():
                with contextlib.suppress(Exception):
                    await self._end(token)

    def __len__(self) -> int:
        return len(self._sessions)


def gateway_tag(gateway_id: str) -> str:
    """A short, stable tag of a gateway for its poll tokens (not secret: it only routes blame)."""
    return hashlib.sha256(gateway_id.encode()).hexdigest()[:8]


def _goodbye(
    message: str, reason: int = R.DISCONNECT_REASON_UNAVAILABLE, sealed: bool = False
) -> agent_pb2.PollResponse:
    """A response that ends the poll session (no token).

    `sealed`: to a collector waiting for its handshake reply, as a typed refusal in
    `records`. Otherwise a cleartext Disconnect in `messages`: a collector before sealing
    reads it; a sealed one sees the session end (no token, no records) and starts anew.
    """
    disconnect = agent_pb2.Disconnect(reason=reason, message=message, retry=True)  # type: ignore[arg-type]
    if sealed:
        return agent_pb2.PollResponse(records=[refusal_reply(disconnect)])
    return agent_pb2.PollResponse(messages=[agent_pb2.ServerMessage(sequence=1, disconnect=disconnect)])


def add_poll_route(app: web.Application, sessions: PollSessions) -> None:
    async def poll(request: web.Request) -> web.Response:
        if request.content_type != CONTENT_TYPE:
            raise web.HTTPUnsupportedMediaType(text=f"send a PollRequest protobuf as {CONTENT_TYPE}\n")
        body = await request.read()  # bounded by the application's client_max_size
        try:
            poll_request = agent_pb2.PollRequest.FromString(body)
        except DecodeError:
            raise web.HTTPBadRequest(text="the body is not a PollRequest protobuf\n") from None
        response = await sessions.poll(poll_request, request_client(request, sessions.trusted_proxies))
        return web.Response(body=response.SerializeToString(), content_type=CONTENT_TYPE)

    app.router.add_post(POLL_PATH, poll)
