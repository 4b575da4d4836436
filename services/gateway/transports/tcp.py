"""The raw TCP transport: 4-byte big-endian length, then one frame (port 6600).

Every session is sealed (ADR 0019), so a frame is a handshake frame or one sealed record:
the decoder's bound is Noise's 65,535 bytes, and envelopes up to `--max-frame-bytes`
arrive in several records (the channel joins them). The decoder refuses a length over
the bound before buffering the body, so garbage
on the port (an HTTP request, a TLS hello on a plaintext port) gets a clear Disconnect
naming the likely mistake and a closed connection, not an allocation.
"""

from __future__ import annotations

import asyncio
import collections
import ssl

from outpost.session.codec import FrameDecoder, encode_frame
from outpost.session.noise.channel import MAX_RECORD_BYTES
from services.gateway.agent_session import run_session
from services.gateway.gateway_context import GatewayContext

READ_CHUNK = 64 * 1024
TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0


class TcpAgentStream:
    transport = "tcp"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame_bytes: int) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(max_frame_bytes)
        self._frames: collections.deque[bytes] = collections.deque()
        peer = writer.get_extra_info("peername")
        self.remote_address = f"{peer[0]}:{peer[1]}" if peer else "unknown"

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


async def start_tcp_server(
    ctx: GatewayContext, host: str, port: int, ssl_context: ssl.SSLContext | None, max_frame_bytes: int
) -> tuple[asyncio.Server, int]:
    frame_bound = min(max_frame_bytes, MAX_RECORD_BYTES)

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
    return server, int(server.sockets[0].getsockname()[1])
