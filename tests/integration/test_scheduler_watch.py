"""WatchDispatch: list-then-watch, resume from a revision, settings, keepalives, other replicas."""

from __future__ import annotations

import asyncio

import grpc
from prometheus_client import REGISTRY

from outpost.scheduler.v1 import scheduler_pb2
from tests.integration.test_scheduler_admin import expect_error
from tests.integration.test_scheduler_support import (
    JS,
    RunningScheduler,
    claim,
    create_discovery,
    eventually,
    report,
    running_scheduler,
    start_run,
    watching,
)


def body(event: scheduler_pb2.DispatchEvent) -> str:
    return str(event.WhichOneof("body"))


async def test_a_watch_from_zero_bookmarks_the_newest_revision_then_streams_changes(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, zone="dmz")
        await start_run(scheduler)
        newest = await scheduler.server.store.newest_revision()

        async with watching(scheduler) as watch:
            first = await watch.next()
            assert (body(first), first.revision) == ("bookmark", newest)
            run = await start_run(scheduler)
            queued = await watch.next_change(timeout=2.0)

        assert body(queued) == "job_run" and queued.revision == newest + 1
        assert (queued.job_run.id, queued.job_run.state, queued.job_run.target_zone) == (
            run.id,
            JS.JOB_STATE_QUEUED,
            "dmz",
        )
        assert list(queued.job_run.discovery_snapshot.targets) == ["10.0.0.0/24"]


async def test_a_resumed_watch_replays_what_it_missed_in_order_then_bookmarks(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, "a", collector="edge-7")
        async with watching(scheduler) as watch:
            cursor = (await watch.next()).revision
        # The gateway is away while these happen.
        first = await start_run(scheduler, "a")
        second = await start_run(scheduler, "a")
        await claim(scheduler, "edge-7")  # first: dispatched
        await scheduler.stub.CancelJobRun(scheduler_pb2.CancelJobRunRequest(id=second.id))
        await update_settings(scheduler, 10, ["collector_check_minutes"])

        async with watching(scheduler, since_revision=cursor) as watch:
            replayed = [await watch.next() for _ in range(4)]
            await report(scheduler, first.id, JS.JOB_STATE_RUNNING)
            live = await watch.next_change(timeout=2.0)

        # Events carry current state, so each run appears once: at its newest revision.
        assert [(body(e), e.job_run.id or "settings") for e in replayed[:3]] == [
            ("job_run", first.id),
            ("job_run", second.id),
            ("settings", "settings"),
        ]
        assert replayed[0].job_run.state == JS.JOB_STATE_DISPATCHED
        assert (replayed[1].job_run.state, replayed[1].job_run.cancelled_by) == (JS.JOB_STATE_CANCELLED, "alice")
        assert replayed[2].settings.collector_check_minutes == 10
        revisions = [e.revision for e in replayed[:3]]
        assert revisions == sorted(revisions) and revisions[0] > cursor
        assert (body(replayed[3]), replayed[3].revision) == ("bookmark", revisions[-1])
        assert (live.job_run.id, live.job_run.state) == (first.id, JS.JOB_STATE_RUNNING)
        assert live.revision > revisions[-1]


async def test_settings_default_change_by_field_mask_and_reach_watchers_once(database_url: str) -> None:
    async with running_scheduler(database_url, watch_bookmark_interval=0.3) as scheduler, watching(scheduler) as watch:
        current = await scheduler.stub.GetSettings(scheduler_pb2.GetSettingsRequest())
        assert current.settings.collector_check_minutes == 5
        await watch.next()

        for minutes in (15, 15):  # the second changes nothing and appends no event
            response = await update_settings(scheduler, minutes, ["collector_check_minutes"])
            assert response.settings.collector_check_minutes == 15
        changed = await watch.next_change(timeout=2.0)
        assert (body(changed), changed.settings.collector_check_minutes) == ("settings", 15)
        keepalive = await watch.next(timeout=2.0)
        assert (body(keepalive), keepalive.revision) == ("bookmark", changed.revision)
        again = await scheduler.stub.GetSettings(scheduler_pb2.GetSettingsRequest())
        assert again.settings.collector_check_minutes == 15

        for minutes, fields, text in (
            (0, ["collector_check_minutes"], "between 1 and 1440"),
            (2000, ["collector_check_minutes"], "between 1 and 1440"),
            (10, [], "name the settings to change"),
            (10, ["poll"], "unknown setting(s) poll"),
        ):
            await expect_error(update_settings(scheduler, minutes, fields), grpc.StatusCode.INVALID_ARGUMENT, text)


async def update_settings(
    scheduler: RunningScheduler, minutes: int, fields: list[str]
) -> scheduler_pb2.UpdateSettingsResponse:
    request = scheduler_pb2.UpdateSettingsRequest(
        settings=scheduler_pb2.Settings(collector_check_minutes=minutes), fields=fields
    )
    response: scheduler_pb2.UpdateSettingsResponse = await scheduler.stub.UpdateSettings(request)
    return response


async def test_changes_made_by_another_replica_arrive_within_a_second(database_url: str) -> None:
    async with running_scheduler(database_url) as replica_a, running_scheduler(database_url) as replica_b:
        await create_discovery(replica_b, zone="dmz")
        async with watching(replica_a) as watch:
            await watch.next()
            loop = asyncio.get_running_loop()
            started = loop.time()

            run = await start_run(replica_b)
            event = await watch.next_change(timeout=2.0)

            assert loop.time() - started < 1.0
        assert event.job_run.id == run.id


async def test_a_watch_ends_cleanly_on_shutdown_and_is_counted_while_open(database_url: str) -> None:
    def open_watches() -> float:
        return float(REGISTRY.get_sample_value("outpost_scheduler_watchers") or 0)

    async with running_scheduler(database_url) as scheduler:
        before = open_watches()
        call = scheduler.stub.WatchDispatch(scheduler_pb2.WatchDispatchRequest())
        assert body(await call.read()) == "bookmark"
        assert open_watches() == before + 1

        await scheduler.server.hub.close()

        async with asyncio.timeout(5):
            assert await call.read() is grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK

        async def released() -> bool:
            return open_watches() == before

        await eventually(released, what="the watch to be released")
