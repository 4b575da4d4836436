"""The connect scan's moving parts: per-host TCP results, the port feed, the worker loop.

The engine admits hosts one at a time; each admitted host's ports go into one shared
`PortFeed`, and a fixed pool of `connect_worker`s takes (host, port) pairs from it, host
after host. Nothing is built per port beyond the socket itself: no task, no list of all
pairs. A host's `tcp_done` is set when its last port has an answer (or timed out).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from dataclasses import dataclass, field

from services.collector.discovery import tcp
from services.collector.discovery.limiter import ProbeLimiter
from services.collector.discovery.model import PortState

# How long a worker may keep the event loop when every connect is answered at once.
HOLD_LOOP_SECONDS = 0.01
_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_SOL_SOCKET, _SO_ERROR = socket.SOL_SOCKET, socket.SO_ERROR


@dataclass(eq=False)
class HostScan:
    """One target's TCP results, filled in by the workers."""

    ip: str
    pending: int
    tcp_done: asyncio.Event = field(default_factory=asyncio.Event)
    open_ports: list[int] = field(default_factory=list)
    filtered_ports: list[int] = field(default_factory=list)
    answered: bool = False
    tcp_rtt_ms: float | None = None
    family: int = field(init=False)

    def __post_init__(self) -> None:
        self.family = tcp.family_of(self.ip)
        if self.pending == 0:
            self.tcp_done.set()

    def record(self, port: int, state: PortState, rtt_ms: float) -> None:
        """One port's answer. Closed ports are only counted: a scanned port not listed was closed."""
        if state is PortState.FILTERED:
            self.filtered_ports.append(port)
        else:
            self.answered = True
            self.tcp_rtt_ms = rtt_ms if self.tcp_rtt_ms is None else min(self.tcp_rtt_ms, rtt_ms)
            if state is PortState.OPEN:
                self.open_ports.append(port)
        self.pending -= 1
        if self.pending == 0:
            self.tcp_done.set()

    def complete(self, open_ports: list[int], filtered_ports: list[int], answered: bool, rtt_ms: float | None) -> None:
        """All of the host's answers at once, as a scan worker process reports them."""
        self.open_ports = list(open_ports)
        self.filtered_ports = list(filtered_ports)
        self.answered = answered
        self.tcp_rtt_ms = rtt_ms
        self.pending = 0
        self.tcp_done.set()


class PortFeed:
    """Hands (host, port) pairs to the workers, host after host, built on demand."""

    def __init__(self, ports: tuple[int, ...]) -> None:
        self._ports = ports
        self._hosts: collections.deque[HostScan] = collections.deque()
        self._next = 0
        self._closed = False
        self._ready = asyncio.Event()

    def add(self, host: HostScan) -> None:
        if self._ports:
            self._hosts.append(host)
            self._ready.set()

    def close(self) -> None:
        """No more hosts: workers finish what is queued, then return."""
        self._closed = True
        self._ready.set()

    def take(self) -> tuple[HostScan, int] | None:
        """The next pair if one is queued (else None), without waiting."""
        if not self._hosts:
            return None
        host = self._hosts[0]
        port = self._ports[self._next]
        self._next += 1
        if self._next == len(self._ports):
            self._hosts.popleft()
            self._next = 0
        return host, port

    async def next(self) -> tuple[HostScan, int] | None:
        """The next pair, waiting for one; None once closed and drained."""
        while not self._hosts:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self.take()


async def connect_worker(feed: PortFeed, limiter: ProbeLimiter, timeout: float) -> None:
    """Probe pairs from `feed` until it is closed and drained, one limiter slot per connect.

    `tcp.probe_port`'s steps, inlined: at ~25,000 connects a second (loopback, a near
    segment) a coroutine per port and the limiter's own coroutines were most of the
    engine's Python time (docs/benchmarks.md, "Discovery scan time"). A free slot with no
    rate set is taken without suspending; otherwise the worker waits in the limiter's queue.
    """
    loop = asyncio.get_running_loop()
    next_turn = time.monotonic() + HOLD_LOOP_SECONDS
    while (item := feed.take() or await feed.next()) is not None:
        host, port = item
        if not limiter.try_acquire():
            await limiter.acquire()
        try:
            sock = socket.socket(host.family, _STREAM)
            try:
                started = time.perf_counter()
                error = sock.connect_ex((host.ip, port))
                if error in tcp.IN_PROGRESS:
                    # A near host has often answered before connect() returns.
                    error = sock.getsockopt(_SOL_SOCKET, _SO_ERROR)
                    if error == 0 and not tcp.is_connected(sock):
                        error = await tcp.connected(loop, sock, timeout)
                rtt_ms = (time.perf_counter() - started) * 1000
                if error == 0:
                    sock.setsockopt(_SOL_SOCKET, socket.SO_LINGER, tcp.LINGER_RST)
            finally:
                sock.close()
        finally:
            limiter.release()
        host.record(port, tcp.state_of(error), rtt_ms)
        # Near hosts answer inside connect(), and then nothing above suspends: give the
        # loop a turn now and then, so results stream and a cancel lands promptly.
        if time.monotonic() >= next_turn:
            await asyncio.sleep(0)
            next_turn = time.monotonic() + HOLD_LOOP_SECONDS
