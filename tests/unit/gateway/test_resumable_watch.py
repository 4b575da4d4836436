"""The gateway's watch loop outlives any number of failed attempts and resumes when the peer is back."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from structlog.testing import capture_logs

from outpost.backoff import Backoff
from services.gateway.resumable_watch import BACKOFF_MAX_SECONDS, ResumableWatch

FAILURES = 5000
WAIT = 5.0


@dataclass(frozen=True)
class Mark:
    revision: int


@dataclass(frozen=True)
class Change:
    revision: int


class FlakyPeer:
    """Refuses the first `failures` watches, then serves a bookmark and a change and ends the stream."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.opened_since: list[int] = []
        self.hold = asyncio.Event()

    async def watch(self, since: int) -> AsyncIterator[Mark | Change]:
        self.opened_since.append(since)
        if len(self.opened_since) <= self.failures:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")
        if len(self.opened_since) == self.failures + 1:
            yield Mark(revision=7)
            yield Change(revision=8)
            return  # the peer drains: the watch must come back quickly, from revision 8
        yield Mark(revision=8)
        await self.hold.wait()


class RecordedSleeps:
    """Stands in for `asyncio.sleep`: records each delay and only yields to the loop."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


async def test_five_thousand_failed_attempts_leave_the_watch_alive_and_it_resumes_when_the_peer_is_back() -> None:
    peer = FlakyPeer(FAILURES)
    applied: list[Change] = []
    sleeps = RecordedSleeps()
    watch = ResumableWatch(
        "registry",
        peer.watch,
        applied.append,
        Mark,
        backoff=Backoff(0.4, BACKOFF_MAX_SECONDS, random.Random(3)),
        sleep=sleeps,
    )
    with capture_logs() as logs:
        task = asyncio.create_task(watch.run())
        async with asyncio.timeout(WAIT):
            while len(peer.opened_since) < FAILURES + 2:
                await asyncio.sleep(0)
        assert not task.done()
        await stop(task)

    assert [e["event"] for e in logs].count("watch_failed") == FAILURES
    assert watch.ready.is_set() and applied == [Change(revision=8)]
    assert peer.opened_since[-1] == 8  # resumed from the newest revision seen
    failing, after_recovery = sleeps.delays[:FAILURES], sleeps.delays[FAILURES]
    assert max(failing) <= BACKOFF_MAX_SECONDS
    assert max(failing[-100:]) > BACKOFF_MAX_SECONDS / 2  # still backing off, not spinning
    assert after_recovery <= 0.4  # the items received reset the backoff


async def test_an_unexpected_error_of_one_attempt_is_logged_and_retried() -> None:
    attempts = 0

    async def broken_then_fine(since: int) -> AsyncIterator[Mark]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ValueError("a bug in the stream")
        yield Mark(revision=1)
        await asyncio.Event().wait()

    watch = ResumableWatch("dispatch", broken_then_fine, lambda item: None, Mark, sleep=RecordedSleeps())
    with capture_logs() as logs:
        task = asyncio.create_task(watch.run())
        async with asyncio.timeout(WAIT):
            await watch.ready.wait()
        await stop(task)
    assert "watch_crashed" in [e["event"] for e in logs]


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
