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
import collections
import contextlib
import socket
import ssl
from dataclasses import dataclass

import structlog

from outpost.session.codec import FrameDecoder, encode_frame
from outpost.session.noise.channel import MAX_RECORD_BYTES
from services.gateway import metrics
from services.gateway.sessions.admission import host_of
from services.gateway.sessions.agent_session import run_session
from services.gateway.sessions.context import GatewayContext
from services.gateway.transports.client_address import TrustedProxies, format_address, peer_address
from services.gateway.transports.proxy_protocol import (
    ProxyHeader,
    ProxyHeaderError,
    ProxyHeaderParser,
    could_be_proxy_header,
)

log = structlog.get_logger(__name__)

READ_CHUNK = 64 * 1024
TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0
ACCEPT_RETRY_SECONDS = 1.0


class TcpAgentStream:
    transport = "tcp"

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_frame_bytes: int,
        remote_address: str | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(max_frame_bytes)
        self._frames: collections.deque[bytes] = collections.deque()
        if remote_address is None:
            peer = peer_address(writer.get_extra_info("peername"))
            remote_address = format_address(*peer) if peer else "unknown"
        self.remote_address = remote_address

    async def recv(self) -> bytes | None:
        while not self._frames:
            chunk = await self._reader.read(READ_CHUNK)
            if not chunk:
                return None
            self._frames.extend(self._decoder.feed(chunk))
        return self._frames.popleft()

    async def send(self, data: bytes) -> None:
        self._writer.write(encode_frame(data))
        await self._writer.drain()

    async def close(self, reason: str) -> None:
        self._writer.close()
        await self._writer.wait_closed()


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

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await run_session(TcpAgentStream(reader, writer, frame_bound), ctx)

    server = await asyncio.start_server(
        handle,
        host,
        port,
        ssl=ssl_context,
        ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_SECONDS if ssl_context else None,
        backlog=1024,
        limit=frame_bound + 8,
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
    reader = asyncio.StreamReader(limit=frame_bound + 8)
    protocol = asyncio.StreamReaderProtocol(reader)
    try:
        transport, _ = await loop.connect_accepted_socket(
            lambda: protocol,
            conn,
            ssl=ssl_context,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_SECONDS if ssl_context else None,
        )
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        log.info("tls_handshake_failed", remote=remote, error=type(exc).__name__)
        conn.close()
        return
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    await run_session(TcpAgentStream(reader, writer, frame_bound, remote_address=remote), ctx)


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
