"""The raw TCP transport: 4-byte big-endian length, then one frame (port 6600).

Every session is sealed (ADR 0019), so a frame is a handshake frame or one sealed record:
the decoder's bound is Noise's 65,535 bytes, and envelopes up to `--max-frame-bytes`
arrive in several records (the channel joins them). The decoder refuses a length over
the bound before buffering the body, so garbage
on the port (an HTTP request, a TLS hello on a plaintext port) gets a clear Disconnect
naming the likely mistake and a closed connection, not an allocation.

Behind a load balancer (`--tcp-proxy-protocol`, ADR 0026) the listener accepts sockets
itself: from a `--trusted-proxies` address it first reads exactly one PROXY protocol
header (v1 or v2, within `--handshake-timeout`, before TLS: the balancer writes it in
the clear) and the session's address is the one the header names; a connection from
anyone else that starts with a PROXY signature is refused and closed, and one that does
not is a collector dialling directly, with its own address. The header is read with
exact-size reads on the raw socket, so not a byte of the collector's (or of its TLS
ClientHello) is consumed before the stream layer takes over. Connections waiting for
their header count against `--max-unauthenticated` like handshakes do.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass

import structlog

from outpost.session.codec import FrameDecoder, encode_frame
from outpost.session.errors import RemoteProtocolError
from outpost.session.noise.channel import MAX_RECORD_BYTES
from services.gateway import metrics
from services.gateway.sessions.admission import host_of
from services.gateway.sessions.agent_session import SessionRunner, start_pushed_session
from services.gateway.sessions.context import GatewayContext
from services.gateway.transports.client_address import TrustedProxies, format_address, peer_address
from services.gateway.transports.proxy_protocol import (
    ProxyHeader,
    ProxyHeaderError,
    ProxyHeaderParser,
    could_be_proxy_header,
)
from services.gateway.transports.sealed import SealedAgentStream

log = structlog.get_logger(__name__)

TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0
ACCEPT_RETRY_SECONDS = 1.0


class TcpSession(asyncio.Protocol):
    """One collector connection on the TCP port, driven by asyncio's protocol callbacks.

    No task, no StreamReader/StreamWriter and no frame queue per connection (issue 13,
    item 2): bytes are cut into frames as they arrive, each frame goes through the seal
    (handshake replies written at once), and each envelope it completes is handed to the
    session runner, whose worker exists only while there is something to handle. With
    `INBOX_SIZE` envelopes waiting the runner pauses reading here, and resumes it when it
    has caught up; a write that fills the socket's buffer waits for asyncio to say the
    buffer drained. This object is also the session's `AgentStream` for writing and closing.
    """

    transport = "tcp"

    def __init__(self, ctx: GatewayContext, max_frame_bytes: int, remote_address: str | None = None) -> None:
        self._ctx = ctx
        self._decoder = FrameDecoder(max_frame_bytes)
        self._wire: asyncio.Transport | None = None
        self.remote_address = remote_address or "unknown"
        self._named = remote_address is not None
        self._runner: SessionRunner | None = None
        self._stream: SealedAgentStream | None = None
        self._failed = False
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._connected = False

    # --- asyncio's callbacks ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._wire = transport
        self._connected = True
        if not self._named:
            peer = peer_address(transport.get_extra_info("peername"))
            self.remote_address = format_address(*peer) if peer else "unknown"
        self._runner, self._stream = start_pushed_session(self, self._ctx)
        self._runner.reading_switch(self._reading)

    def data_received(self, data: bytes) -> None:
        if self._runner is not None and not self._failed:
            self._runner.in_context(self._received, data)

    def eof_received(self) -> bool:
        if self._runner is not None and not self._failed:
            self._runner.in_context(self._ended)
        return False  # close the transport: a collector that stops sending is gone

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        for waiter in (self._drained, self._lost):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self._runner is not None:
            self._runner.peer_closed()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # --- frames in ----------------------------------------------------------------------------
    def _received(self, data: bytes) -> None:
        assert self._runner is not None and self._stream is not None and self._wire is not None
        try:
            for frame in self._decoder.feed(data):
                replies, envelope = self._stream.open(frame)
                for reply in replies:
                    self._wire.write(encode_frame(reply))
                if envelope is not None and self._runner.frame_received(envelope):
                    self._reading(False)
        except RemoteProtocolError as exc:
            self._fail(exc)

    def _ended(self) -> None:
        assert self._runner is not None and self._stream is not None
        try:
            self._stream.ended()
        except RemoteProtocolError as exc:
            self._fail(exc)
            return
        self._runner.peer_closed()

    def _fail(self, error: RemoteProtocolError) -> None:
        """Nothing more is read from a peer that sent what cannot be read; the runner says why and closes."""
        assert self._runner is not None
        self._failed = True
        self._reading(False)
        self._runner.peer_closed(error)

    def _reading(self, on: bool) -> None:
        wire = self._wire
        if wire is None or wire.is_closing() or (on and self._failed):
            return
        if on:
            wire.resume_reading()
        else:
            wire.pause_reading()

    # --- the session's AgentStream: writing and closing ---------------------------------------
    async def recv(self) -> bytes | None:
        raise NotImplementedError("TCP pushes frames to the runner; nothing reads them")

    async def send(self, data: bytes) -> None:
        wire = self._wire
        if wire is None or not self._connected or wire.is_closing():
            raise ConnectionError("the connection is closed")
        wire.write(encode_frame(data))
        if self._write_paused:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await self._drained
            finally:
                self._drained = None
            if not self._connected:
                raise ConnectionError("the connection was lost while a write waited")

    async def close(self, reason: str) -> None:
        """Close after what was written has gone; return once the connection is gone."""
        if self._wire is None or not self._connected:
            return
        self._lost = asyncio.get_running_loop().create_future()
        self._wire.close()
        await self._lost


@dataclass(frozen=True)
class ProxyProtocolPolicy:
    """`--tcp-proxy-protocol`: who may send a PROXY header, and how long it may take."""

    trusted: TrustedProxies
    header_timeout: float


class TcpListener:
    """What the app needs of a TCP listener: its port, and `close()` when draining."""

    def __init__(self, server: asyncio.Server | None = None, accept: asyncio.Task[None] | None = None) -> None:
        self._server = server
        self._accept = accept
        self.port = 0

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._accept is not None:
            self._accept.cancel()


async def start_tcp_server(
    ctx: GatewayContext,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    max_frame_bytes: int,
    *,
    proxy: ProxyProtocolPolicy | None = None,
) -> tuple[TcpListener, int]:
    frame_bound = min(max_frame_bytes, MAX_RECORD_BYTES)
    if proxy is not None:
        return await _start_proxied(ctx, (host, port), ssl_context, frame_bound, proxy)

    server = await asyncio.get_running_loop().create_server(
        lambda: TcpSession(ctx, frame_bound),
        host,
        port,
        ssl=ssl_context,
        ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_SECONDS if ssl_context else None,
        backlog=1024,
    )
    return TcpListener(server=server), int(server.sockets[0].getsockname()[1])


async def _start_proxied(
    ctx: GatewayContext,
    address: tuple[str, int],
    ssl_context: ssl.SSLContext | None,
    frame_bound: int,
    proxy: ProxyProtocolPolicy,
) -> tuple[TcpListener, int]:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    listening = socket.create_server(address, family=family, backlog=1024)
    listening.setblocking(False)
    connections: set[asyncio.Task[None]] = set()

    async def accept() -> None:
        try:
            while True:
                try:
                    conn, _ = await loop.sock_accept(listening)
                except OSError as exc:
                    # Out of file descriptors or memory: pause as asyncio's own servers do,
                    # rather than end the listener.
                    log.warning("tcp_accept_failed", error=str(exc), retry_in=ACCEPT_RETRY_SECONDS)
                    await asyncio.sleep(ACCEPT_RETRY_SECONDS)
                    continue
                task = asyncio.create_task(_serve_proxied(ctx, conn, ssl_context, frame_bound, proxy))
                connections.add(task)
                task.add_done_callback(connections.discard)
        finally:
            listening.close()

    task = asyncio.create_task(accept())
    return TcpListener(accept=task), int(listening.getsockname()[1])


async def _serve_proxied(
    ctx: GatewayContext,
    conn: socket.socket,
    ssl_context: ssl.SSLContext | None,
    frame_bound: int,
    proxy: ProxyProtocolPolicy,
) -> None:
    """One accepted socket: its PROXY header (trusted) or none (direct), then the session."""
    loop = asyncio.get_running_loop()
    conn.setblocking(False)
    peer = peer_address(conn.getpeername())
    shown = format_address(*peer) if peer else "unknown"
    admission = ctx.admission
    if not admission.try_begin():
        metrics.PROXY_HEADERS_REFUSED.labels("too_many_connections").inc()
        conn.close()
        return
    try:
        remote = await _client_of(loop, conn, peer, shown, proxy)
    except asyncio.CancelledError:
        conn.close()  # the gateway is stopping
        raise
    except ProxyHeaderError as exc:
        remote = None
        reason = "untrusted" if peer is not None and not proxy.trusted.trusts(peer[0]) else "malformed"
        metrics.PROXY_HEADERS_REFUSED.labels(reason).inc()
        log.warning("proxy_header_refused", peer=shown, reason=reason, message=str(exc))
        if reason == "untrusted":
            admission.record_garbage(host_of(shown), admission.clock())
    except (TimeoutError, OSError) as exc:
        remote = None
        metrics.PROXY_HEADERS_REFUSED.labels("timeout" if isinstance(exc, TimeoutError) else "closed").inc()
        log.info("proxy_header_not_received", peer=shown, error=type(exc).__name__)
    finally:
        admission.end()
    if remote is None:
        conn.close()
        return
    try:
        await loop.connect_accepted_socket(
            lambda: TcpSession(ctx, frame_bound, remote_address=remote),
            conn,
            ssl=ssl_context,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_SECONDS if ssl_context else None,
        )
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        log.info("tls_handshake_failed", remote=remote, error=type(exc).__name__)
        conn.close()


async def _client_of(
    loop: asyncio.AbstractEventLoop,
    conn: socket.socket,
    peer: tuple[str, int] | None,
    shown: str,
    proxy: ProxyProtocolPolicy,
) -> str:
    """The collector's address: from a trusted peer's header, else the peer's own.

    Raises ProxyHeaderError for a bad header from a trusted peer, and for any PROXY
    header from an untrusted one; TimeoutError when the first bytes do not come in time.
    """
    async with asyncio.timeout(proxy.header_timeout):
        if peer is None or not proxy.trusted.trusts(peer[0]):
            first = await _peek(loop, conn)
            if could_be_proxy_header(first):
                raise ProxyHeaderError("a PROXY protocol header from an address not in --trusted-proxies")
            return shown
        header = await _read_header(loop, conn)
    if header.source is None:
        return shown  # LOCAL / UNKNOWN: the proxy's own connection
    return format_address(*header.source)


async def _read_header(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> ProxyHeader:
    parser = ProxyHeaderParser()
    while True:
        data = await loop.sock_recv(conn, parser.bytes_wanted())
        if not data:
            raise ProxyHeaderError("connection closed inside the PROXY protocol header")
        header = parser.feed(data)
        if header is not None:
            return header


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    """The connection's first byte, left in the socket for the stream (and TLS) layer."""
    while True:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            first = conn.recv(1, socket.MSG_PEEK)
            if not first:
                raise OSError("connection closed before its first byte")
            return first
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(conn.fileno(), _wake, ready)
        try:
            await ready
        finally:
            loop.remove_reader(conn.fileno())


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)
