"""A loopback TCP relay that records every byte both ways, and can tamper with a collector's frames.

The observer and the active attacker of docs/security.md "On the network path", for
tests: put it between a collector and a gateway (any transport: it relays raw TCP, so
WebSocket and HTTP polling pass through unchanged) and read `recorded()` afterwards.

With `tamper` set (TCP transport only, whose frames are `4-byte length || body`), it
parses the collector's frames and, once `arm()` was called, at the next frame of at least
`min_bytes` (a test arms it just before a discovery run, so that frame is the first result
batch), does one thing an attacker on the path can do, once:

- `flip`:    flip one bit of that frame;
- `replay`:  send an earlier frame of the same connection (the collector's first record)
             again just before it;
- `reorder`: hold it back and send the frame after it first.

Everything after that passes untouched, so the collector's reconnect can finish its work.
The proxy runs its own event loop on a daemon thread; `stop()` closes every socket it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

Tamper = Literal["flip", "replay", "reorder"]
CHUNK = 65_536


@dataclass
class Recording:
    """What went through one connection, each direction in order."""

    to_gateway: bytearray = field(default_factory=bytearray)
    to_collector: bytearray = field(default_factory=bytearray)


class _FrameTamper:
    """Re-frames the collector's byte stream of one connection and applies the attack once."""

    def __init__(self, proxy: RecordingProxy) -> None:
        self.proxy = proxy
        self.buffer = bytearray()
        self.frames: list[bytes] = []
        self.held: bytes | None = None

    def feed(self, data: bytes) -> bytes:
        """Bytes to forward now for `data` received."""
        self.buffer += data
        out = bytearray()
        while len(self.buffer) >= 4:
            (length,) = struct.unpack(">I", self.buffer[:4])
            if len(self.buffer) < 4 + length:
                break
            frame = bytes(self.buffer[: 4 + length])
            del self.buffer[: 4 + length]
            out += self._frame(frame)
        return bytes(out)

    def _frame(self, frame: bytes) -> bytes:
        index = len(self.frames)
        self.frames.append(frame)
        if self.held is not None:  # reorder: this one goes first, then the held one
            held, self.held = self.held, None
            return frame + held
        proxy = self.proxy
        if not proxy.armed.is_set() or proxy.tampered.is_set() or index < 2 or len(frame) - 4 < proxy.min_bytes:
            return frame
        proxy.tampered.set()
        if proxy.tamper == "flip":
            altered = bytearray(frame)
            altered[4 + len(frame) // 2] ^= 0x01
            return bytes(altered)
        if proxy.tamper == "replay":
            return self.frames[1] + frame
        self.held = frame
        return b""


class RecordingProxy:
    def __init__(self, upstream: str, *, tamper: Tamper | None = None, min_bytes: int = 0) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.tamper = tamper
        self.min_bytes = min_bytes
        self.port = 0
        self.connections: list[Recording] = []
        self.armed = threading.Event()
        self.tampered = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="recording-proxy")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def arm(self) -> None:
        """Tamper with the next collector frame of at least `min_bytes`."""
        self.armed.set()

    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def recorded(self) -> bytes:
        """Every byte of every connection, both directions."""
        with self._lock:
            return b"".join(bytes(c.to_gateway) + bytes(c.to_collector) for c in self.connections)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        recording = Recording()
        with self._lock:
            self.connections.append(recording)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, upstream_writer}
        tamper = _FrameTamper(self) if self.tamper else None
        await asyncio.gather(
            self._pump(client_reader, upstream_writer, recording.to_gateway, tamper),
            self._pump(upstream_reader, client_writer, recording.to_collector, None),
            return_exceptions=True,
        )
        self._writers -= {client_writer, upstream_writer}

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: bytearray,
        tamper: _FrameTamper | None,
    ) -> None:
        try:
            while data := await reader.read(CHUNK):
                with self._lock:
                    record += data
                if tamper is not None:
                    data = tamper.feed(data)
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()
