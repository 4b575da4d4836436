"""HTTP polling (`POST /v1/poll`, aiohttp client) for networks that allow only HTTP(S).

There is no stream, so this transport makes one. `send()` only buffers. `recv()` returns
the next envelope the last response carried; when there is none it polls: at once if
something is buffered, else once the server's `next_poll_seconds` have passed since the
previous response (the first poll goes at once). A poll is one `PollRequest` with the
buffered envelopes and the session token of the previous response; its `PollResponse`
brings the server's envelopes, the token for the next poll and when to poll next. A
response without a token means the server holds no session for us (it ended it, or did
not know the token): its envelopes (a Disconnect) are delivered, then `recv()` ends. In a
sealed session that Disconnect is cleartext, so it is only logged (`poll_session_ended`,
`authenticated: false`).

Each POST runs as a task of its own that `recv()` only waits for, so cancelling `recv()`
neither loses a response nor aborts a request the server may already have acted on: the
next `recv()` takes up the same POST. Envelopes leave the buffer only once the server
answered 200, so after a failed poll (connection error, timeout, any other status:
TransportError) the next poll carries them again. A POST carries at most
MAX_REQUEST_BYTES of envelopes (the gateway's default request bound) and the rest go on
the poll right after it. `close()` hands a live session's last envelopes (the
Disconnect) over in one final poll, bounded by CLOSE_TIMEOUT.

Sealed (ADR 0019), the same buffering carries opaque frames instead of envelopes: they go
in `PollRequest.records` and come from `PollResponse.records`, in order, so the sealed
wrapper (`transport.sealed`) runs its handshake and records over polls unchanged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl

import aiohttp
import structlog
from google.protobuf.message import DecodeError

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import RemoteProtocolError
from services.collector.domain.server_url import ServerUrl
from services.collector.transport import (
    CLOSE_TIMEOUT,
    MAX_MESSAGE_BYTES,
    ClientTls,
    TransportError,
)
from services.collector.transport.http_tunnel import TunnelConnector
from services.collector.transport.proxy import Proxy

CONTENT_TYPE = "application/x-protobuf"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30.0)
MAX_BUFFERED_MESSAGES = 1000
MAX_BUFFERED_BYTES = 8 * 1024 * 1024
MAX_REQUEST_BYTES = MAX_MESSAGE_BYTES
ENVELOPE_OVERHEAD = 8  # more than the tag and length bytes of one envelope in a PollRequest
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
ERROR_BODY_CHARS = 200
R = agent_pb2.DisconnectReason
log = structlog.get_logger(__name__)


class HttpPollTransport:
    def __init__(
        self, http: aiohttp.ClientSession, url: str, ssl_context: ssl.SSLContext | bool, sealed: bool = False
    ) -> None:
        self._http = http
        self._sealed = sealed
        self._url = url
        self._ssl = ssl_context
        self._token = ""
        self._ended = False  # a response came without a token
        self._closed = False
        self._outgoing: collections.deque[bytes] = collections.deque()
        self._outgoing_bytes = 0
        self._incoming: collections.deque[bytes] = collections.deque()
        self._sent = asyncio.Event()
        self._next_poll = 0.0  # loop time; 0 polls at once
        self._poll: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, url: ServerUrl, tls: ClientTls, sealed: bool = False, proxy: Proxy | None = None
    ) -> HttpPollTransport:
        # Nothing to connect yet: the first poll (with the Hello) reaches the server or fails.
        scheme = "https" if url.tls else "http"
        connector = TunnelConnector(proxy) if proxy is not None else None
        # Cookies are kept for the transport's life, IP-addressed servers included: a load
        # balancer's affinity cookie keeps this session's polls on the gateway holding it.
        http = aiohttp.ClientSession(
            timeout=REQUEST_TIMEOUT, connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        return cls(http, f"{scheme}://{url.hostport}{url.path}", tls.ssl_context if url.tls else True, sealed)

    async def send(self, payload: bytes) -> None:
        if self._closed:
            raise TransportError("send on a closed poll transport")
        if len(self._outgoing) >= MAX_BUFFERED_MESSAGES or self._outgoing_bytes + len(payload) > MAX_BUFFERED_BYTES:
            raise TransportError(
                f"poll buffer full: {len(self._outgoing)} envelopes ({self._outgoing_bytes} bytes) not yet delivered"
            )
        self._outgoing.append(payload)
        self._outgoing_bytes += len(payload)
        self._sent.set()

    async def recv(self) -> bytes | None:
        while not self._incoming:
            if self._closed or self._ended:
                return None
            if self._poll is None:
                await self._wait_until_due()
                if self._closed:
                    return None
                self._poll = asyncio.create_task(self._post(), name="http-poll")
            poll = self._poll
            await asyncio.wait({poll})  # cancelling recv() here leaves the POST running
            self._poll = None
            poll.result()
        return self._incoming.popleft()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sent.set()
        poll = self._poll
        try:
            # A goodbye matters only to a session the server holds (we have its token).
            with contextlib.suppress(TransportError, RemoteProtocolError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    if poll is not None:
                        await asyncio.wait({poll})
                        poll.result()
                    if self._outgoing and self._token and not self._ended:
                        await self._post()
        finally:
            if poll is not None and not poll.done():
                poll.cancel()
            await self._http.close()

    async def _wait_until_due(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._outgoing and not self._closed and (delay := self._next_poll - loop.time()) > 0:
            self._sent.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._sent.wait()

    async def _post(self) -> None:
        request = agent_pb2.PollRequest(session_token=self._token)
        size = len(self._token) + ENVELOPE_OVERHEAD
        taken = 0
        for payload in self._outgoing:
            if taken and size + len(payload) + ENVELOPE_OVERHEAD > MAX_REQUEST_BYTES:
                break
            if self._sealed:
                request.records.append(payload)
            else:
                request.messages.add().MergeFromString(payload)
            size += len(payload) + ENVELOPE_OVERHEAD
            taken += 1
        try:
            async with self._http.post(
                self._url,
                data=request.SerializeToString(),
                headers={"Content-Type": CONTENT_TYPE},
                ssl=self._ssl,
            ) as response:
                body = await _read_body(response)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransportError(f"poll failed: {str(exc) or type(exc).__name__}") from exc
        if response.status != 200:
            text = body.decode("utf-8", errors="replace")[:ERROR_BODY_CHARS]
            raise TransportError(f"poll answered {response.status} {response.reason}: {text}")
        for _ in range(taken):  # send() only appends, so the batch is still at the front
            self._outgoing_bytes -= len(self._outgoing.popleft())
        try:
            reply = agent_pb2.PollResponse.FromString(body)
        except DecodeError as exc:
            raise RemoteProtocolError(R.DISCONNECT_REASON_MALFORMED_FRAME, f"malformed poll response: {exc}") from exc
        self._token = reply.session_token
        self._ended = not reply.session_token
        if self._sealed:
            if self._ended and not reply.records:
                _log_cleartext_goodbye(reply)
            self._incoming.extend(reply.records)
        else:
            self._incoming.extend(message.SerializeToString() for message in reply.messages)
        self._next_poll = asyncio.get_running_loop().time() + reply.next_poll_seconds


def _log_cleartext_goodbye(reply: agent_pb2.PollResponse) -> None:
    """A sealed session ended by a cleartext Disconnect (an unknown token): say what the gateway said.

    Unauthenticated text, so it only goes to the log (marked so) and changes nothing: the
    session ends either way. It is how an operator learns, on the collector's side, that
    its polls reach a gateway that does not hold its session (no load balancer affinity).
    """
    for message in reply.messages:
        if message.HasField("disconnect"):
            log.warning(
                "poll_session_ended",
                gateway_said=message.disconnect.message[:ERROR_BODY_CHARS],
                reason=R.Name(message.disconnect.reason),
                authenticated=False,
            )


async def _read_body(response: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_FRAME_TOO_LARGE, f"poll response larger than {MAX_RESPONSE_BYTES} bytes"
            )
    return bytes(body)
