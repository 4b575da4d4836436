"""The HTTP polling transport against a real `POST /v1/poll` endpoint on 127.0.0.1:0.

`PollGateway` serves each poll with a real `ServerSession` behind a session token, the
way the gateway does, and records every request. It hands out a new token with every
response, so every test checks that each poll carries the token the previous response
gave. `next_poll_seconds` answers are scripted per poll (`0`, `1` or a long `3600`
that only a `send()` may cut short), so the tests assert on the order and contents of
polls; the one wall-clock assertion is a lower bound (a timer never fires early).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from outpost.agent.v1 import agent_pb2
from outpost.session import handshake
from outpost.session.codec import decode_server_message
from outpost.session.collector import CollectorSession, CollectorState, Event, StateChanged
from outpost.session.errors import RemoteProtocolError
from outpost.session.server import (
    AuthDecision,
    AuthenticationRequested,
    ServerSession,
    ServerSessionConfig,
    ServerState,
)
from services.collector.connection import Connection
from services.collector.domain.server_url import ServerUrl, parse_server_url
from services.collector.status import StatusFile
from services.collector.store.identity import Identity, IdentityStore
from services.collector.supervisor import CollectorProfile
from services.collector.transport import MAX_MESSAGE_BYTES, ClientTls, TransportError, open_transport
from services.collector.transport.http_poll import (
    MAX_BUFFERED_BYTES,
    MAX_BUFFERED_MESSAGES,
    HttpPollTransport,
)
from tests.tls_certs import make_pki

from .conftest import WAIT

R = agent_pb2.DisconnectReason
LONG_POLL = 3600  # far beyond any test: only a send() makes the next poll happen

OpenTransport = Callable[..., Awaitable[HttpPollTransport]]


@dataclass
class Poll:
    """One request as the gateway saw it, and what it answered."""

    token: str
    messages: list[agent_pb2.CollectorMessage]
    arrived: float
    status: int = 200
    answered_token: str = ""
    answered: list[agent_pb2.ServerMessage] = field(default_factory=list)
    answered_at: float = 0.0

    @property
    def kinds(self) -> list[str | None]:
        return [m.WhichOneof("body") for m in self.messages]


class PollGateway:
    """`POST /v1/poll` in front of real `ServerSession`s, one per token.

    `next_poll_seconds(n)` is the answer to the n-th poll (1-based). `failures` are
    (status, body) answers given, in order, to the next polls instead of serving them.
    While `gate` is set to an unset Event, requests are recorded and then held.
    """

    def __init__(self) -> None:
        self.config = ServerSessionConfig("instance-a")
        self.sessions: dict[str, ServerSession] = {}
        self.served: list[ServerSession] = []
        self.polls: list[Poll] = []
        self.next_poll_seconds: Callable[[int], int] = lambda n: LONG_POLL
        self.failures: list[tuple[int, bytes]] = []
        self.gate: asyncio.Event | None = None
        self.port = 0
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES)  # the gateway's request bound
        app.router.add_post("/v1/poll", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, scheme: str = "http") -> ServerUrl:
        return parse_server_url(f"{scheme}://127.0.0.1:{self.port}")

    async def wait_for_polls(self, count: int, *, answered: bool = False) -> list[Poll]:
        """Wait until `count` polls arrived (and, with `answered`, were answered)."""

        def ready() -> bool:
            return len(self.polls) >= count and (not answered or self.polls[count - 1].answered_at > 0)

        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(ready)
        return self.polls

    async def _handle(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        assert request.content_type == "application/x-protobuf"
        poll_request = agent_pb2.PollRequest.FromString(await request.read())
        poll = Poll(poll_request.session_token, list(poll_request.messages), arrived=loop.time())
        self.polls.append(poll)
        await self._notify()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            poll.status, body = self.failures.pop(0)
            response = web.Response(status=poll.status, body=body)
        else:
            reply = self._serve(poll_request, len(self.polls), loop.time())
            poll.answered_token, poll.answered = reply.session_token, list(reply.messages)
            response = web.Response(body=reply.SerializeToString(), content_type="application/x-protobuf")
        poll.answered_at = loop.time()
        await self._notify()
        return response

    def _serve(self, request: agent_pb2.PollRequest, number: int, now: float) -> agent_pb2.PollResponse:
        if request.session_token:
            session = self.sessions.pop(request.session_token, None)
            if session is None:
                disconnect = agent_pb2.Disconnect(
                    reason=R.DISCONNECT_REASON_UNAVAILABLE, message="unknown poll session", retry=True
                )
                return agent_pb2.PollResponse(messages=[agent_pb2.ServerMessage(sequence=1, disconnect=disconnect)])
        else:
            session = ServerSession(self.config, session_id=str(uuid.uuid4()), nonce=os.urandom(32), now=now)
            self.served.append(session)
        for message in request.messages:
            session.receive(message, now)
        for event in session.events_received():
            if isinstance(event, AuthenticationRequested):
                session.authenticated(self._decide(event), now)
        deadline = session.next_deadline()
        if deadline is not None and now >= deadline:
            session.tick(now)
        token = ""
        if not session.closed:
            token = secrets.token_urlsafe(12)
            self.sessions[token] = session
        return agent_pb2.PollResponse(
            session_token=token, messages=session.data_to_send(), next_poll_seconds=self.next_poll_seconds(number)
        )

    def _decide(self, request: AuthenticationRequested) -> AuthDecision:
        hello = request.hello
        if not handshake.verify(hello, request.nonce, self.config.server_instance, request.signature):
            return AuthDecision(accepted=False, message="bad proof")
        return AuthDecision(
            accepted=True, state=ServerState.PENDING, fingerprint=handshake.fingerprint(hello.public_key)
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


@pytest.fixture
async def gateway() -> AsyncIterator[PollGateway]:
    gateway = PollGateway()
    await gateway.start()
    yield gateway
    await gateway.stop()


@pytest.fixture
async def transports() -> AsyncIterator[OpenTransport]:
    """Open poll transports; each is closed at the end of the test."""
    opened: list[HttpPollTransport] = []

    async def open_one(url: ServerUrl, tls: ClientTls | None = None) -> HttpPollTransport:
        transport = await open_transport(url, tls or ClientTls())
        assert isinstance(transport, HttpPollTransport)
        opened.append(transport)
        return transport

    yield open_one
    for transport in opened:
        await transport.close()


class Collector:
    """A CollectorSession used only to make real envelopes (Hello, then the Proof)."""

    def __init__(self, profile: CollectorProfile, identity: Identity) -> None:
        now = asyncio.get_running_loop().time()
        self.session = CollectorSession(hello=profile.hello(identity), sign=identity.private_key.sign, now=now)
        self.session.start(now)

    def take(self) -> bytes:
        [message] = self.session.data_to_send()
        return message.SerializeToString()

    def receive(self, data: bytes) -> agent_pb2.ServerMessage:
        message = decode_server_message(data)
        self.session.receive(message, asyncio.get_running_loop().time())
        return message


def marker(sequence: int, padding: int = 0) -> bytes:
    """An envelope with no body (a server session ignores it), padded to size with an
    unknown field as a newer collector might send."""
    data = agent_pb2.CollectorMessage(sequence=sequence).SerializeToString()
    if padding:
        data += _varint((1000 << 3) | 2) + _varint(padding) + bytes(padding)
    return data


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def assert_tokens_chain(polls: list[Poll]) -> None:
    """The first poll has no token; every later one the token of the last 200 answer."""
    expected = ""
    for poll in polls:
        assert poll.token == expected
        if poll.status == 200:
            expected = poll.answered_token


async def within(awaitable: Awaitable[bytes | None]) -> bytes | None:
    async with asyncio.timeout(WAIT):
        return await awaitable


# --- the handshake over polls -------------------------------------------------------------
class RecordingWork:
    """The connection's Work with nothing to do; records the events it is given."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()
        self.events: list[Event] = []
        self._seen = asyncio.Condition()

    def connection_opened(self) -> None:
        pass

    def fill(self, session: CollectorSession) -> None:
        pass

    async def on_event(self, event: Event) -> None:
        self.events.append(event)
        async with self._seen:
            self._seen.notify_all()

    async def wait_for_state(self, state: CollectorState) -> None:
        def entered() -> bool:
            return any(isinstance(e, StateChanged) and e.state is state for e in self.events)

        async with asyncio.timeout(WAIT), self._seen:
            await self._seen.wait_for(entered)


async def run_connection_until_pending(
    url: ServerUrl,
    tls: ClientTls,
    profile: CollectorProfile,
    identity: Identity,
    identity_store: IdentityStore,
    status: StatusFile,
) -> None:
    """Connect, wait for Pending, then stop the collector as SIGTERM does."""
    now = asyncio.get_running_loop().time()
    session = CollectorSession(hello=profile.hello(identity), sign=identity.private_key.sign, now=now)
    work = RecordingWork()
    connection = Connection(
        await open_transport(url, tls),
        session,
        server=url,
        identity=identity,
        identity_store=identity_store,
        status=status,
        work=work,
    )
    task = asyncio.create_task(connection.run())
    try:
        await work.wait_for_state(CollectorState.PENDING)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_handshake_completes_over_polls_and_shutdown_says_goodbye_on_a_last_poll(
    gateway: PollGateway,
    profile: CollectorProfile,
    identity: Identity,
    identity_store: IdentityStore,
    status: StatusFile,
) -> None:
    await run_connection_until_pending(gateway.url(), ClientTls(), profile, identity, identity_store, status)

    polls = gateway.polls
    assert [p.kinds for p in polls] == [["hello"], ["proof"], ["disconnect"]]
    assert [[m.WhichOneof("body") for m in p.answered] for p in polls] == [["challenge"], ["pending"], []]
    assert polls[2].messages[0].disconnect.reason == R.DISCONNECT_REASON_CLIENT_SHUTDOWN
    assert_tokens_chain(polls)
    assert polls[2].answered_token == ""  # the server session is over
    [served] = gateway.served
    assert served.state is ServerState.CLOSED
    assert identity_store.load_or_create().bound_server_instance == "instance-a"


async def test_https_with_the_ca_file_completes_the_handshake(
    tmp_path: Path,
    profile: CollectorProfile,
    identity: Identity,
    identity_store: IdentityStore,
    status: StatusFile,
) -> None:
    pki = make_pki(tmp_path / "pki")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.cert_file, pki.key_file)
    gateway = PollGateway()
    await gateway.start(server_tls)
    try:
        url = gateway.url("https")
        await run_connection_until_pending(
            url, ClientTls.from_ca_file(str(pki.ca_file)), profile, identity, identity_store, status
        )
    finally:
        await gateway.stop()
    assert [p.kinds for p in gateway.polls] == [["hello"], ["proof"], ["disconnect"]]


async def test_https_without_the_ca_is_a_transport_error_naming_the_certificate(
    tmp_path: Path, transports: OpenTransport
) -> None:
    pki = make_pki(tmp_path / "pki")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.cert_file, pki.key_file)
    gateway = PollGateway()
    await gateway.start(server_tls)
    try:
        transport = await transports(gateway.url("https"), ClientTls())
        await transport.send(marker(1))
        with pytest.raises(TransportError, match="certificate"):
            await within(transport.recv())
    finally:
        await gateway.stop()
    assert gateway.polls == []


# --- tokens and timing --------------------------------------------------------------------
async def test_every_poll_carries_the_token_the_previous_response_gave(
    gateway: PollGateway,
    profile: CollectorProfile,
    identity: Identity,
    transports: OpenTransport,
) -> None:
    collector = Collector(profile, identity)
    transport = await transports(gateway.url())
    await transport.send(collector.take())
    assert collector.receive(await within(transport.recv()) or b"").HasField("challenge")

    receiving = asyncio.create_task(transport.recv())
    for sequence in (2, 3, 4):
        await transport.send(marker(sequence))
        await gateway.wait_for_polls(sequence, answered=True)
    receiving.cancel()

    polls = gateway.polls
    assert [[m.sequence for m in p.messages] for p in polls] == [[1], [2], [3], [4]]
    assert len({p.answered_token for p in polls}) == 4  # a new token every time
    assert_tokens_chain(polls)


async def test_next_poll_seconds_is_honoured_and_a_send_cuts_the_wait_short(
    gateway: PollGateway,
    profile: CollectorProfile,
    identity: Identity,
    transports: OpenTransport,
) -> None:
    # poll 1 -> "again at once", poll 2 -> "in 1s", poll 3 -> "in an hour"
    gateway.next_poll_seconds = lambda n: {1: 0, 2: 1}.get(n, LONG_POLL)
    collector = Collector(profile, identity)
    transport = await transports(gateway.url())
    await transport.send(collector.take())
    assert collector.receive(await within(transport.recv()) or b"").HasField("challenge")

    receiving = asyncio.create_task(transport.recv())
    await gateway.wait_for_polls(3, answered=True)  # two empty polls, nothing sent
    await transport.send(marker(2))
    await gateway.wait_for_polls(4, answered=True)
    receiving.cancel()

    polls = gateway.polls
    assert [p.kinds for p in polls] == [["hello"], [], [], [None]]
    assert polls[3].messages[0].sequence == 2  # no empty poll before it: the hour was honoured
    assert polls[2].arrived - polls[1].answered_at >= 1.0 - 0.01  # lower bound: timers never fire early
    assert_tokens_chain(polls)


# --- failures -----------------------------------------------------------------------------
async def test_a_503_is_a_transport_error_and_the_envelopes_go_on_the_next_successful_poll(
    gateway: PollGateway,
    profile: CollectorProfile,
    identity: Identity,
    transports: OpenTransport,
) -> None:
    collector = Collector(profile, identity)
    transport = await transports(gateway.url())
    gateway.failures = [(503, b"overloaded " + b"x" * 300 + b"END")]
    await transport.send(collector.take())
    with pytest.raises(TransportError) as raised:
        await within(transport.recv())
    assert "503" in str(raised.value)
    assert "overloaded " + "x" * 189 in str(raised.value)
    assert "END" not in str(raised.value)  # only the first 200 characters of the body

    assert collector.receive(await within(transport.recv()) or b"").HasField("challenge")
    # later in the session: a failed poll keeps the envelope and the token
    gateway.failures = [(500, b"internal error")]
    await transport.send(marker(2))
    with pytest.raises(TransportError, match="500"):
        await within(transport.recv())
    receiving = asyncio.create_task(transport.recv())
    await gateway.wait_for_polls(4, answered=True)
    receiving.cancel()

    polls = gateway.polls
    assert [p.status for p in polls] == [503, 200, 500, 200]
    assert [p.kinds for p in polls] == [["hello"], ["hello"], [None], [None]]
    assert_tokens_chain(polls)
    assert len(gateway.served) == 1  # the refused poll opened no session


async def test_a_gateway_that_cannot_be_reached_is_a_transport_error(
    transports: OpenTransport,
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    transport = await transports(parse_server_url(f"http://127.0.0.1:{port}"))
    await transport.send(marker(1))
    with pytest.raises(TransportError, match="poll failed"):
        await within(transport.recv())


async def test_a_response_that_is_not_a_poll_response_fails_the_session_as_malformed(
    gateway: PollGateway, transports: OpenTransport
) -> None:
    gateway.failures = [(200, b"\xff\xff\xff")]
    transport = await transports(gateway.url())
    await transport.send(marker(1))
    with pytest.raises(RemoteProtocolError) as raised:
        await within(transport.recv())
    assert raised.value.reason == R.DISCONNECT_REASON_MALFORMED_FRAME


async def test_a_response_without_a_token_ends_the_stream_after_its_envelopes(
    gateway: PollGateway,
    profile: CollectorProfile,
    identity: Identity,
    transports: OpenTransport,
) -> None:
    collector = Collector(profile, identity)
    transport = await transports(gateway.url())
    await transport.send(collector.take())
    assert collector.receive(await within(transport.recv()) or b"").HasField("challenge")

    gateway.sessions.clear()  # the gateway restarted
    await transport.send(marker(2))
    goodbye = decode_server_message(await within(transport.recv()) or b"")
    assert goodbye.disconnect.message == "unknown poll session"
    assert await within(transport.recv()) is None
    await transport.send(marker(3))
    await transport.close()  # no session on the server: nothing to say goodbye to
    assert len(gateway.polls) == 2


# --- cancellation -------------------------------------------------------------------------
async def test_cancelling_recv_while_it_waits_loses_nothing(
    gateway: PollGateway,
    profile: CollectorProfile,
    identity: Identity,
    transports: OpenTransport,
) -> None:
    collector = Collector(profile, identity)
    transport = await transports(gateway.url())
    await transport.send(collector.take())
    assert collector.receive(await within(transport.recv()) or b"").HasField("challenge")

    # the connection loop waits on recv() under a deadline; this one passes
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(transport.recv(), 0.05)
    await transport.send(collector.take())  # the proof
    assert collector.receive(await within(transport.recv()) or b"").HasField("pending")
    assert [p.kinds for p in gateway.polls] == [["hello"], ["proof"]]


async def test_cancelling_recv_during_a_post_keeps_its_response_and_does_not_resend(
    gateway: PollGateway,
    profile: CollectorProfile,
    identity: Identity,
    transports: OpenTransport,
) -> None:
    collector = Collector(profile, identity)
    transport = await transports(gateway.url())
    gateway.gate = asyncio.Event()
    await transport.send(collector.take())
    receiving = asyncio.create_task(transport.recv())
    await gateway.wait_for_polls(1)  # the POST is at the gateway, held
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    gateway.gate.set()

    assert collector.receive(await within(transport.recv()) or b"").HasField("challenge")
    await transport.send(collector.take())
    assert collector.receive(await within(transport.recv()) or b"").HasField("pending")
    assert [p.kinds for p in gateway.polls] == [["hello"], ["proof"]]
    assert_tokens_chain(gateway.polls)


async def test_cancelling_recv_during_a_post_that_fails_keeps_the_envelopes(
    gateway: PollGateway,
    profile: CollectorProfile,
    identity: Identity,
    transports: OpenTransport,
) -> None:
    collector = Collector(profile, identity)
    transport = await transports(gateway.url())
    gateway.gate = asyncio.Event()
    gateway.failures = [(503, b"busy")]
    await transport.send(collector.take())
    receiving = asyncio.create_task(transport.recv())
    await gateway.wait_for_polls(1)
    receiving.cancel()
    gateway.gate.set()

    with pytest.raises(TransportError, match="503"):  # the failure is reported, not lost
        await within(transport.recv())
    assert collector.receive(await within(transport.recv()) or b"").HasField("challenge")
    assert [(p.status, p.kinds) for p in gateway.polls] == [(503, ["hello"]), (200, ["hello"])]


# --- bounds -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("count", "size"),
    [(MAX_BUFFERED_MESSAGES, 10), (MAX_BUFFERED_BYTES // MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES)],
)
async def test_the_outgoing_buffer_is_bounded_in_envelopes_and_bytes(
    count: int, size: int, transports: OpenTransport
) -> None:
    transport = await transports(parse_server_url("http://127.0.0.1:9"))  # never polled
    for _ in range(count):
        await transport.send(bytes(size))
    with pytest.raises(TransportError, match="poll buffer full"):
        await transport.send(bytes(10))


async def test_a_large_backlog_is_split_into_polls_the_gateway_accepts(
    gateway: PollGateway,
    profile: CollectorProfile,
    identity: Identity,
    transports: OpenTransport,
) -> None:
    collector = Collector(profile, identity)
    transport = await transports(gateway.url())
    await transport.send(collector.take())
    for sequence in (2, 3, 4):
        await transport.send(marker(sequence, padding=600 * 1024))
    assert collector.receive(await within(transport.recv()) or b"").HasField("challenge")
    receiving = asyncio.create_task(transport.recv())
    await gateway.wait_for_polls(3, answered=True)
    receiving.cancel()

    polls = gateway.polls
    assert [[m.sequence for m in p.messages] for p in polls] == [[1, 2], [3], [4]]
    assert [p.status for p in polls] == [200, 200, 200]
    assert_tokens_chain(polls)
