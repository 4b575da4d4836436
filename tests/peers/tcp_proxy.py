"""A TCP proxy on loopback that a test can cut and restore, like pulling a cable.

Theory of operation
-------------------
The proxy listens on `host:port` and forwards every accepted connection to `upstream`.
It runs its own asyncio loop on a daemon thread, so synchronous tests drive it with
plain calls; every call waits for the loop to have done it before returning.

`cut()` makes the link a black hole, the way a failed router or a pulled cable does, not
the way a stopped server does:

- bytes stop moving in both directions on every open connection, and the sockets stay
  open, so neither end sees a reset or an end of stream, only silence;
- a new connection is accepted (the client's connect() succeeds) and then held: it is
  neither forwarded nor refused.

So a collector behind a cut proxy learns that the link is dead only from its own
heartbeat deadline, and a gateway only from its own; a refusal would tell them at once.
`cut(reset_existing=True)` instead tears down the open connections (RST to both ends)
before black-holing new ones: a link that broke loudly.

`restore()` lets bytes move again. Held connections are connected upstream now and carry
what the client sent meanwhile; frozen ones carry what queued up during the cut, as TCP
would after retransmitting. An end that gave up during the cut closed its socket; the
proxy then closes the other side when the bytes move again.

Every socket the proxy made is closed by `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

CALL_TIMEOUT = 10.0
CHUNK = 65_536

T = TypeVar("T")


@dataclass(eq=False)
class _Link:
    """One client connection and, once forwarded, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]


class TcpProxy:
    """Forward `host:port` to `upstream` ("host:port"); `cut()`, `restore()`, `stop()`."""

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0) -> None:
        upstream_host, _, upstream_port = upstream.rpartition(":")
        self.upstream = (upstream_host.strip("[]"), int(upstream_port))
        self.host = host
        self.port = port
        self.accepted = 0
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{upstream}", daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None

    # --- the test's side: plain blocking calls ---------------------------------------

    def start(self) -> Self:
        self._thread.start()
        self._call(self._start())
        return self

    @property
    def address(self) -> str:
        """Where clients connect: "127.0.0.1:PORT"."""
        return f"{self.host}:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._flowing is not None and not self._flowing.is_set()

    def open_connections(self) -> int:
        """Client connections open now (forwarded, frozen or held)."""
        return self._call(self._count())

    def cut(self, *, reset_existing: bool = False) -> None:
        """Black-hole the link (see the module docstring); with `reset_existing`, RST open connections first."""
        self._call(self._cut(reset_existing))

    def restore(self) -> None:
        """Let bytes flow again: frozen connections resume, held ones are forwarded now."""
        self._call(self._restore())

    def stop(self) -> None:
        """Close the listener and every connection, then end the proxy's thread."""
        if not self._thread.is_alive():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT)

    # --- the proxy's loop --------------------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _count(self) -> int:
        return len(self._links)

    async def _cut(self, reset_existing: bool) -> None:
        assert self._flowing is not None
        self._flowing.clear()
        if reset_existing:
            for link in list(self._links):
                _reset(link)
                for task in link.tasks:
                    task.cancel()

    async def _restore(self) -> None:
        assert self._flowing is not None
        self._flowing.set()

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            _reset(link)
        tasks = [task for link in self._links for task in link.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        link = _Link(client_writer)
        current = asyncio.current_task()
        if current is not None:
            link.tasks.add(current)
        self._links.add(link)
        self.accepted += 1
        try:
            # Accepted and held while the link is cut: the client sees silence, not a refusal.
            await self._flowing.wait()
            try:
                upstream_reader, link.upstream = await self._open_upstream()
            except OSError:
                return  # the upstream is down: the client sees its connection end
            pumps = [
                asyncio.create_task(self._pump(client_reader, link.upstream)),
                asyncio.create_task(self._pump(upstream_reader, client_writer)),
            ]
            link.tasks.update(pumps)
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except asyncio.CancelledError:
            pass
        finally:
            self._links.discard(link)
            for writer in link.writers():
                writer.close()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The connection to the upstream for one client (a subclass may prefix a header)."""
        return await asyncio.open_connection(*self.upstream)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy reader -> writer; while cut, hold what was read (the kernel holds the rest)."""
        assert self._flowing is not None
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if writer.is_closing():
                    return
                writer.write(data)
                await writer.drain()


def _reset(link: _Link) -> None:
    """Abort both ends with an RST (SO_LINGER 0), dropping anything unsent."""
    for writer in link.writers():
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
