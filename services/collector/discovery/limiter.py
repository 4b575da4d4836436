"""Bounds on a run's probes: how many are in flight, and how many start per second.

`TokenBucket` is the pure rule (time is passed in, so it is tested without sleeping);
`ProbeLimiter` applies it with asyncio: every probe takes a slot (a counter bounding
sockets in flight) and, when a rate is set, a token (bounding new connections per
second) before it opens its socket, and gives the slot back when the socket is closed.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class TokenBucket:
    """`rate` tokens per second, at most `capacity` saved up; starts full."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs a positive rate and a capacity of at least 1")
        self._rate = rate
        self._capacity = capacity
        self._tokens = capacity
        self._updated = now

    def take(self, now: float) -> float:
        """Take one token; return 0.0, or how many seconds the caller must wait first.

        A caller told to wait has its token reserved already (the balance goes
        negative), so callers queue in order and the long-run rate is never exceeded.
        """
        elapsed = max(0.0, now - self._updated)
        self._updated = max(self._updated, now)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._tokens -= 1
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self._rate


class ProbeLimiter:
    """At most `concurrency` probes in flight; at most `rate_per_second` started (0 = no limit).

    The slots are counted here rather than in an `asyncio.Semaphore`, so that the connect
    workers' hot path can take a free slot without a coroutine (`try_acquire`). A freed
    slot goes straight to the longest waiter (first come, first served), so a caller on
    the fast path never overtakes one that is waiting.
    """

    def __init__(self, concurrency: int, rate_per_second: int = 0) -> None:
        if concurrency < 1:
            raise ValueError("a probe limiter needs a concurrency of at least 1")
        self._free = concurrency
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._bucket = (
            TokenBucket(rate_per_second, max(1.0, rate_per_second / 10), asyncio.get_running_loop().time())
            if rate_per_second
            else None
        )

    def try_acquire(self) -> bool:
        """Take a slot if one is free, nobody waits and no rate is set; never suspends."""
        if self._free and not self._waiters and self._bucket is None:
            self._free -= 1
            return True
        return False

    async def acquire(self) -> None:
        if self._free and not self._waiters:
            self._free -= 1
        else:
            await self._wait_for_slot()
        if self._bucket is None:
            return
        try:
            delay = self._bucket.take(asyncio.get_running_loop().time())
            if delay:
                await asyncio.sleep(delay)
        except BaseException:
            self.release()
            raise

    async def _wait_for_slot(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled before using it: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
