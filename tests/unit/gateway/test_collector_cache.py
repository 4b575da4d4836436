"""The gateway's watched collector cache (ADR 0034): freshness, drops, reads that lose races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from outpost.session.server import ServerState
from services.gateway.peers.collector_cache import CachedCollector, CollectorCache, CredentialsChanged
from services.gateway.peers.registry_client import Bookmark
from services.gateway.sessions.hub import ChangeKind, CollectorChange


def entry(uid: str, state: ServerState = ServerState.ENABLED, revision: int = 1) -> CachedCollector:
    return CachedCollector(
        instance_uid=uid,
        name=uid,
        zone="lab",
        state=state,
        state_reason="",
        revision=revision,
        public_key=b"k" * 32,
        encryption_public_key=b"",
        enrolled=False,
        passwords=(),
        version="1",
        sealing_algorithms=(),
        access_key_id="",
        password_last_proved="",
    )


class Registry:
    """What ListCollectorCredentials would answer; `gate` holds a read until released."""

    def __init__(self, *entries: CachedCollector) -> None:
        self.rows = {e.instance_uid: e for e in entries}
        self.gate: asyncio.Event | None = None
        self.reads: list[tuple[str, ...]] = []

    async def fetch(self, uids: Sequence[str]) -> list[CachedCollector]:
        self.reads.append(tuple(uids))
        snapshot = [self.rows[u] for u in (uids or sorted(self.rows)) if u in self.rows]
        if self.gate is not None:
            await self.gate.wait()
        return snapshot


def change(uid: str, state: ServerState, revision: int, kind: ChangeKind = ChangeKind.STATE_CHANGED) -> CollectorChange:
    return CollectorChange(
        revision=revision, kind=kind, instance_uid=uid, name=uid, state=state, reason="", changed_by="admin"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def open_cache(registry: Registry, clock: Clock) -> tuple[CollectorCache, AsyncIterator[Any]]:
    """A cache whose watch stream is open (one bookmark, then silence) and resynced."""
    cache = CollectorCache(registry.fetch, max_staleness=5.0, clock=clock)

    async def stream(since: int) -> AsyncIterator[Any]:
        yield Bookmark(1)
        await asyncio.Event().wait()

    watch = cache.observe(stream)(0)
    await watch.__anext__()  # the first bookmark: the watch resyncs
    await cache.resync()
    return cache, watch


async def test_the_cache_answers_only_while_its_watch_is_heard_from() -> None:
    clock = Clock()
    registry = Registry(entry("a"))
    cache, _ = await open_cache(registry, clock)
    assert cache.get("a") is not None
    clock.now += 5.1  # no event, no bookmark: behind
    assert not cache.fresh() and cache.get("a") is None


async def test_an_event_drops_the_entry_at_once_and_a_read_brings_it_back() -> None:
    clock = Clock()
    registry = Registry(entry("a"))
    cache, _ = await open_cache(registry, clock)
    runner = asyncio.create_task(cache.run())
    try:
        registry.rows["a"] = entry("a", ServerState.DISABLED, revision=2)
        registry.gate = asyncio.Event()
        cache.apply(change("a", ServerState.DISABLED, 2))
        assert cache.get("a") is None  # nothing admits on the old entry, even before the read
        registry.gate.set()
        async with asyncio.timeout(5):
            while cache.get("a") is None:
                await asyncio.sleep(0.001)
        found = cache.get("a")
        assert found is not None and found.state is ServerState.DISABLED
    finally:
        runner.cancel()


async def test_a_read_overtaken_by_a_newer_event_is_not_applied() -> None:
    clock = Clock()
    registry = Registry(entry("a"))
    cache, _ = await open_cache(registry, clock)
    registry.gate = asyncio.Event()
    runner = asyncio.create_task(cache.run())
    try:
        cache.apply(CredentialsChanged(2, "a"))  # read 1 starts, held at the gate
        await asyncio.sleep(0.01)
        cache.apply(change("a", ServerState.DISABLED, 3, ChangeKind.REMOVED))  # removed meanwhile
        del registry.rows["a"]
        registry.gate.set()
        await asyncio.sleep(0.05)
        assert cache.get("a") is None
    finally:
        runner.cancel()


async def test_removed_and_pending_collectors_are_not_read_again_and_a_resync_replaces_everything() -> None:
    clock = Clock()
    registry = Registry(entry("a"), entry("b"))
    cache, _ = await open_cache(registry, clock)
    cache.apply(change("a", ServerState.PENDING, 2, ChangeKind.REMOVED))
    del registry.rows["a"]
    assert cache.get("a") is None and not cache._queued
    del registry.rows["b"]  # removed while the watch was away: only the resync can tell
    await cache.resync()
    assert cache.get("b") is None and len(cache) == 0


async def test_a_stream_that_ends_makes_the_cache_stale_until_the_next_resync() -> None:
    clock = Clock()
    registry = Registry(entry("a"))
    cache = CollectorCache(registry.fetch, max_staleness=5.0, clock=clock)

    async def one_bookmark(since: int) -> AsyncIterator[Any]:
        yield Bookmark(1)

    async for _ in cache.observe(one_bookmark)(0):
        await cache.resync()
        assert cache.fresh()
    assert not cache.fresh() and cache.get("a") is None
