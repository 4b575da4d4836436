"""WatchCollectors: list-then-watch, resume from a revision, keepalives, other replicas."""

from __future__ import annotations

import asyncio

import grpc
from prometheus_client import REGISTRY

from outpost.registry.v1 import registry_pb2
from tests.integration.test_registry_support import (
    CS,
    announce,
    eventually,
    register,
    running_registry,
    watching,
)

BOOKMARK = registry_pb2.EVENT_KIND_BOOKMARK
CHANGED = registry_pb2.EVENT_KIND_STATE_CHANGED
REMOVED = registry_pb2.EVENT_KIND_REMOVED


async def test_watch_from_zero_starts_with_a_bookmark_at_the_newest_revision(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        registered = await register(registry, "edge-7")

        async with watching(registry, since_revision=0) as watch:
            first = await watch.next()

        assert first.kind == BOOKMARK
        assert first.revision == registered.revision


async def test_watch_on_an_empty_registry_bookmarks_revision_zero(database_url: str) -> None:
    async with running_registry(database_url) as registry, watching(registry) as watch:
        first = await watch.next()
        assert (first.kind, first.revision) == (BOOKMARK, 0)
        await announce(registry, "edge-7")
        created = await watch.next_change(timeout=2.0)
        assert (created.kind, created.state, created.name) == (
            CHANGED,
            CS.COLLECTOR_STATE_PENDING,
            "edge-7",
        )


async def test_watch_resumed_from_a_revision_replays_missed_events_in_order(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        await announce(registry, "edge-8")
        async with watching(registry) as watch:
            cursor = (await watch.next()).revision
        # The watcher is away while these happen.
        await register(registry, "edge-7", enable=True)
        await register(registry, "edge-8", enable=False)
        await registry.stub.DisableCollector(registry_pb2.DisableCollectorRequest(name="edge-7"))
        await registry.stub.RemoveCollector(registry_pb2.RemoveCollectorRequest(name="edge-8"))

        async with watching(registry, since_revision=cursor) as watch:
            missed = [await watch.next() for _ in range(5)]
            await announce(registry, "edge-9")
            live = await watch.next_change(timeout=2.0)

        assert [(e.kind, e.name, e.state) for e in missed[:4]] == [
            (CHANGED, "edge-7", CS.COLLECTOR_STATE_ENABLED),
            (CHANGED, "edge-8", CS.COLLECTOR_STATE_DISABLED),
            (CHANGED, "edge-7", CS.COLLECTOR_STATE_DISABLED),
            (REMOVED, "edge-8", CS.COLLECTOR_STATE_DISABLED),
        ]
        revisions = [e.revision for e in missed[:4]]
        assert revisions == sorted(revisions) and revisions[0] > cursor
        assert (missed[4].kind, missed[4].revision) == (BOOKMARK, revisions[-1])
        assert live.name == "edge-9" and live.revision > revisions[-1]


async def test_watch_sends_bookmarks_as_keepalives_when_quiet(database_url: str) -> None:
    async with (
        running_registry(database_url, watch_bookmark_interval=0.2) as registry,
        watching(registry) as watch,
    ):
        events = [await watch.next(timeout=2.0) for _ in range(3)]
        assert [e.kind for e in events] == [BOOKMARK] * 3
        assert len({e.revision for e in events}) == 1


async def test_watch_delivers_changes_made_by_another_replica(database_url: str) -> None:
    async with (
        running_registry(database_url) as replica_a,
        running_registry(database_url) as replica_b,
    ):
        assert replica_a.server_instance == replica_b.server_instance
        await announce(replica_b, "edge-7")
        async with watching(replica_a) as watch:
            await watch.next()
            loop = asyncio.get_running_loop()
            started = loop.time()

            await register(replica_b, "edge-7")
            event = await watch.next_change(timeout=2.0)

            assert loop.time() - started < 1.0
        assert (event.name, event.state) == ("edge-7", CS.COLLECTOR_STATE_ENABLED)


async def test_many_watchers_all_receive_the_same_change(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        async with (
            watching(registry) as w1,
            watching(registry) as w2,
            watching(registry) as w3,
        ):
            for watch in (w1, w2, w3):
                await watch.next()
            registered = await register(registry, "edge-7")
            received = [await w.next_change(timeout=2.0) for w in (w1, w2, w3)]
        assert {e.revision for e in received} == {registered.revision}


async def test_watch_ends_cleanly_when_the_server_stops(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        call = registry.stub.WatchCollectors(registry_pb2.WatchCollectorsRequest())
        assert (await call.read()).kind == BOOKMARK

        await registry.server.hub.close()

        async with asyncio.timeout(5):
            assert await call.read() is grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK


async def test_a_watch_cancelled_by_its_client_is_released(database_url: str) -> None:
    def open_watches() -> float:
        return float(REGISTRY.get_sample_value("outpost_registry_watchers") or 0)

    async with running_registry(database_url) as registry:
        before = open_watches()
        async with watching(registry) as watch:
            await watch.next()
            assert open_watches() == before + 1

        async def released() -> bool:
            return open_watches() == before

        await eventually(released, what="the cancelled watch to be released")


async def test_concurrent_changes_reach_a_live_watch_in_order_and_without_gaps(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        names = [f"edge-{i}" for i in range(8)]
        for name in names:
            await announce(registry, name)
        async with watching(registry) as live:
            start = (await live.next()).revision

            await asyncio.gather(*(register(registry, name, enable=i % 2 == 0) for i, name in enumerate(names)))
            await asyncio.gather(
                *(registry.stub.RemoveCollector(registry_pb2.RemoveCollectorRequest(name=name)) for name in names)
            )
            seen = [await live.next_change() for _ in range(2 * len(names))]

        async with watching(registry, since_revision=start) as replay:
            replayed = [await replay.next() for _ in range(2 * len(names))]
        assert [e.revision for e in seen] == sorted(e.revision for e in seen)
        assert [e.revision for e in seen] == [e.revision for e in replayed]
        assert sorted(e.name for e in seen if e.kind == REMOVED) == sorted(names)
