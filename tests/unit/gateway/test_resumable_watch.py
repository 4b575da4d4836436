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
from services.gateway.peers.resumable_watch import BACKOFF_MAX_SECONDS, ResumableWatch

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


class ScriptedPeer:
    """Serves one scripted stream per attempt (a list of items, or an exception), then holds."""

    def __init__(self, *attempts: list[Mark | Change] | Exception) -> None:
        self.attempts = list(attempts)
        self.opened_since: list[int] = []
        self.hold = asyncio.Event()

    async def watch(self, since: int) -> AsyncIterator[Mark | Change]:
        self.opened_since.append(since)
        script = self.attempts.pop(0) if self.attempts else None
        if isinstance(script, Exception):
            raise script
        for item in script or []:
            yield item
        if script is None:
            await self.hold.wait()


class Reads:
    """The resync: records what was applied before each read; fails while `failures` > 0."""

    def __init__(self, applied: list[Change], failures: int = 0) -> None:
        self.applied = applied
        self.failures = failures
        self.seen: list[list[Change]] = []

    async def __call__(self) -> None:
        if self.failures:
            self.failures -= 1
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")
        self.seen.append(list(self.applied))


async def run_until(watch: ResumableWatch, peer: ScriptedPeer, attempts: int) -> None:
    """Run the watch until the peer was opened `attempts` times (and is holding the last)."""
    task = asyncio.create_task(watch.run())
    try:
        async with asyncio.timeout(WAIT):
            while len(peer.opened_since) < attempts or not watch.ready.is_set():
                await asyncio.sleep(0)
            for _ in range(10):
                await asyncio.sleep(0)  # let the last attempt reach its hold
    finally:
        await stop(task)


async def test_state_is_read_when_the_watch_opens_and_again_after_each_reconnect() -> None:
    """A watch opened at the newest revision replays no settings event: only the read
    tells a restarted gateway what is stored; a reconnect may have missed events too."""
    peer = ScriptedPeer([Mark(5), Change(6)], [Change(7), Mark(7)])
    applied: list[Change] = []
    reads = Reads(applied)
    watch = ResumableWatch("dispatch", peer.watch, applied.append, Mark, resync=reads, sleep=RecordedSleeps())
    with capture_logs() as logs:
        await run_until(watch, peer, attempts=3)
    # First read before any event is applied; the second after the replayed change, at
    # the reconnect's bookmark; the third attempt serves no bookmark, so no read.
    assert reads.seen == [[], [Change(6), Change(7)]]
    assert peer.opened_since == [0, 6, 7]
    assert watch.resyncs == 2
    assert [e["event"] for e in logs].count("watch_resynced") == 2


async def test_ready_waits_for_the_first_read_and_a_failed_read_is_retried_with_a_new_attempt() -> None:
    peer = ScriptedPeer([Mark(3)], [Mark(3)], [Mark(3)])
    reads = Reads([], failures=2)
    sleeps = RecordedSleeps()
    watch = ResumableWatch("dispatch", peer.watch, lambda item: None, Mark, resync=reads, sleep=sleeps)
    with capture_logs() as logs:
        task = asyncio.create_task(watch.run())
        async with asyncio.timeout(WAIT):
            while len(peer.opened_since) < 2:
                await asyncio.sleep(0)
        assert not watch.ready.is_set()  # no collector is accepted on the default
        async with asyncio.timeout(WAIT):
            await watch.ready.wait()
        await stop(task)
    events = [e["event"] for e in logs]
    assert events.count("watch_resync_failed") == 2
    assert reads.seen == [[]] and watch.resyncs == 1
    assert sleeps.delays[1] > 0  # a failed read does not reset the backoff: no spinning
    assert peer.opened_since == [0, 3, 3]


async def test_a_bookmark_below_the_cursor_moves_it_back_and_reads_the_state_again() -> None:
    """The peer's history went back (its database restored): events were lost, so re-read,
    and resume from the peer's revision, not from one it will never reach again."""
    peer = ScriptedPeer([Mark(40), Change(41)], [Mark(12)])
    applied: list[Change] = []
    reads = Reads(applied)
    watch = ResumableWatch("dispatch", peer.watch, applied.append, Mark, resync=reads, sleep=RecordedSleeps())
    with capture_logs() as logs:
        await run_until(watch, peer, attempts=3)
    assert next(e for e in logs if e["event"] == "watch_rewound")["peer_revision"] == 12
    assert reads.seen == [[], [Change(41)]]
    assert peer.opened_since == [0, 41, 12]
