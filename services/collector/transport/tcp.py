"""Raw TCP (optionally TLS) with 4-byte length-prefixed frames (`outpost.session.codec`)."""

from __future__ import annotations

import asyncio
import collections
import contextlib

from outpost.session.codec import FrameDecoder, encode_frame
from outpost.session.noise.channel import MAX_RECORD_BYTES
from services.collector.domain.server_url import ServerUrl
from services.collector.transport import (
    CLOSE_TIMEOUT,
    MAX_MESSAGE_BYTES,
    ClientTls,
    TransportError,
)
from services.collector.transport.proxy import Proxy, ProxyError, open_tunnel

READ_CHUNK = 64 * 1024


class TcpTransport:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame_bytes: int = MAX_MESSAGE_BYTES
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(max_frame_bytes)
        self._frames: collections.deque[bytes] = collections.deque()

    @classmethod
    async def open(
        cls, url: ServerUrl, tls: ClientTls, sealed: bool = False, proxy: Proxy | None = None
    ) -> TcpTransport:
        """`sealed`: every frame is a handshake frame or a sealed record, so the bound is Noise's 65,535 bytes.

        With a proxy, the connection is a CONNECT tunnel through it (`transport.proxy`).
        """
        context = tls.ssl_context if url.tls else None
        try:
            if proxy is None:
                reader, writer = await asyncio.open_connection(url.host, url.port, ssl=context)
            else:
                sock = await open_tunnel(proxy, url.host, url.port)
                reader, writer = await asyncio.open_connection(
                    sock=sock, ssl=context, server_hostname=url.host if context else None
                )
        except (OSError, ProxyError, TimeoutError) as exc:  # OSError includes a certificate that does not verify
            raise TransportError(f"cannot connect to {url}: {str(exc) or type(exc).__name__}") from exc
        return cls(reader, writer, MAX_RECORD_BYTES if sealed else MAX_MESSAGE_BYTES)

    async def send(self, payload: bytes) -> None:
        try:
            self._writer.write(encode_frame(payload))
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            raise TransportError(f"send failed: {exc}") from exc

    async def recv(self) -> bytes | None:
        # StreamReader.read() is cancel-safe and the decoder keeps partial frames between
        # calls, so a recv() cancelled by a deadline loses nothing.
        while not self._frames:
            try:
                data = await self._reader.read(READ_CHUNK)
            except OSError as exc:
                raise TransportError(f"receive failed: {exc}") from exc
            if not data:
                return None
            self._frames.extend(self._decoder.feed(data))  # RemoteProtocolError when oversized
        return self._frames.popleft()

    async def close(self) -> None:
        if self._writer.is_closing():
            return
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
