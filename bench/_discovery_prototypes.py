"""Engine variants tried while profiling the connect scan; measured by `discovery_scan.py --prototypes`.

Not shipped, and not how the engine should be written: each swaps one piece of
`services.collector.discovery` in place for the length of one scan (`swapped()`), reaching
into private state where the experiment needed it, so that their figures come from the
same run, targets and listeners as the engine's own.

(The "lean worker" that was measured here, the TCP probe inlined into the worker and a
fast path past the limiter, is now the engine's `connect_worker`.)

threaded workers   the idea of a second thread with its own event loop: half the connect
                   workers run there, taking pairs from the same feed under a lock and
                   handing results back to the main loop in batches. It measures whether
                   two threads share the kernel's connect work across both cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

from services.collector.discovery import engine, tcp
from services.collector.discovery.connect_scan import HOLD_LOOP_SECONDS, HostScan, PortFeed
from services.collector.discovery.limiter import ProbeLimiter

_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_OPEN, _CLOSED, _FILTERED = tcp.PortState.OPEN, tcp.PortState.CLOSED, tcp.PortState.FILTERED
_BATCH = 64
VARIANTS = ("threaded workers",)


# --- threaded workers -------------------------------------------------------------------------
Result = tuple[HostScan, int, tcp.PortState, float]


class _SharedFeed:
    """The run's PortFeed, taken from by two threads."""

    def __init__(self, feed: PortFeed) -> None:
        self.feed = feed
        self.lock = threading.Lock()

    def take(self) -> tuple[HostScan, int] | None:
        with self.lock:
            return self.feed.take()

    def add(self, host: HostScan) -> None:
        with self.lock:
            self.feed.add(host)

    def close(self) -> None:
        with self.lock:
            self.feed.close()

    @property
    def drained(self) -> bool:
        return self.feed._closed and not self.feed._hosts


def _record(results: list[Result]) -> None:
    for host, port, state, rtt_ms in results:
        host.record(port, state, rtt_ms)


async def _main_worker(shared: _SharedFeed, limiter: ProbeLimiter, timeout: float) -> None:
    next_turn = time.monotonic() + HOLD_LOOP_SECONDS
    while True:
        item = shared.take()
        if item is None:
            if shared.drained:
                return
            shared.feed._ready.clear()
            await shared.feed._ready.wait()
            continue
        host, port = item
        async with limiter.slot():
            state, rtt_ms = await tcp.probe_port(host.ip, port, timeout, family=host.family)
        host.record(port, state, rtt_ms)
        if time.monotonic() >= next_turn:
            await asyncio.sleep(0)
            next_turn = time.monotonic() + HOLD_LOOP_SECONDS


async def _thread_worker(
    shared: _SharedFeed, limiter: ProbeLimiter, timeout: float, post: Callable[[list[Result]], None]
) -> None:
    pending: list[Result] = []
    next_turn = time.monotonic() + HOLD_LOOP_SECONDS
    while True:
        item = shared.take()
        if item is None:
            if pending:
                post(pending)
                pending = []
            if shared.drained:
                return
            await asyncio.sleep(0.001)  # the feed's Event belongs to the main loop: poll
            continue
        host, port = item
        async with limiter.slot():
            state, rtt_ms = await tcp.probe_port(host.ip, port, timeout, family=host.family)
        pending.append((host, port, state, rtt_ms))
        if len(pending) >= _BATCH or time.monotonic() >= next_turn:
            post(pending)
            pending = []
            await asyncio.sleep(0)
            next_turn = time.monotonic() + HOLD_LOOP_SECONDS


async def _threaded_scan(self: engine._Run) -> None:
    """`engine._Run._scan` for the tcp probe, with half the connect workers on a second thread."""
    targets = await self._targets()
    self._total = len(targets)
    shared = _SharedFeed(self._feed)
    main_loop = asyncio.get_running_loop()
    workers = min(self.plan.concurrency, self._total * len(self._tcp_ports))
    remote = workers // 2

    def post(results: list[Result]) -> None:
        main_loop.call_soon_threadsafe(_record, results)

    async def second_loop() -> None:
        limiter = ProbeLimiter(max(1, self.plan.concurrency // 2))
        await asyncio.gather(*(_thread_worker(shared, limiter, self.plan.timeout, post) for _ in range(remote)))

    thread = threading.Thread(target=asyncio.run, args=(second_loop(),), name="connect-workers", daemon=True)
    thread.start()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(workers - remote):
                group.create_task(_main_worker(shared, self._limiter, self.plan.timeout))
            for ip in targets:
                await self._host_slots.acquire()
                host = HostScan(ip, pending=len(self._tcp_ports))
                shared.add(host)
                group.create_task(self._scan_host(host))
            shared.close()
    finally:
        await asyncio.to_thread(thread.join)
    self._report_progress(final=True)


@contextlib.contextmanager
def swapped(variant: str) -> Iterator[None]:
    """Run the engine with `variant` ("threaded workers") in place."""
    if variant == "threaded workers":
        original_scan = engine._Run._scan
        engine._Run._scan = _threaded_scan  # type: ignore[method-assign]
        try:
            yield
        finally:
            engine._Run._scan = original_scan  # type: ignore[method-assign]
    else:
        raise ValueError(f"unknown variant {variant!r}")
