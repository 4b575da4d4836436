"""`ListJobRuns`, `ListDiscoveries`, `ListSchedules` in keyset pages (issue 13 item 5).

The world: 250 job runs started through the real scheduler (`StartDiscovery`), for three
discoveries; the fake clock moves a second every 10 runs, so runs share `created_at` in
tens and only the id breaks the tie. Runs started while a client pages are newer than its
position: they may appear once or not at all, and none of the 250 is missed or doubled.
Tests about filters and tokens rather than about every row across many pages get a world
of 30 runs: seeding costs a scheduler RPC a run.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from outpost.scheduler.v1 import scheduler_pb2
from tests.integration.test_scheduler_support import (
    JS,
    RunningScheduler,
    create_discovery,
    create_schedule,
    running_scheduler,
    start_run,
)

RUNS = 250
DISCOVERIES = ("alpha", "beta", "gamma")


SMALL_RUNS = 30


async def seed(running: RunningScheduler, runs: int) -> None:
    for name in DISCOVERIES:
        await create_discovery(running, name, zone="dmz")
    for n in range(runs):
        await start_run(running, DISCOVERIES[n % 3])
        if n % 10 == 9:
            running.clock.advance(seconds=1)


@pytest.fixture
async def scheduler(database_url: str) -> object:
    async with running_scheduler(database_url) as running:
        await seed(running, RUNS)
        yield running


@pytest.fixture
async def small_scheduler(database_url: str) -> object:
    async with running_scheduler(database_url) as running:
        await seed(running, SMALL_RUNS)
        yield running


async def every_page(
    scheduler: RunningScheduler, request: scheduler_pb2.ListJobRunsRequest, *, between_pages: object = None
) -> tuple[list[scheduler_pb2.JobRun], int]:
    found: list[scheduler_pb2.JobRun] = []
    pages = 0
    while True:
        response = await scheduler.stub.ListJobRuns(request)
        pages += 1
        found.extend(response.job_runs)
        if not response.next_page_token:
            return found, pages
        request.page_token = response.next_page_token
        if between_pages is not None:
            await between_pages(pages)  # type: ignore[operator]


def newest_first(runs: list[scheduler_pb2.JobRun]) -> list[str]:
    return [r.id for r in sorted(runs, key=lambda r: (r.created_at.ToDatetime(), r.id), reverse=True)]


async def test_every_run_is_listed_exactly_once_newest_first_and_runs_started_while_paging_are_never_doubled(
    scheduler: RunningScheduler,
) -> None:
    """One world for both (seeding 250 runs is the cost): page sizes first, then paging
    while new runs start."""
    everything, _ = await every_page(scheduler, scheduler_pb2.ListJobRunsRequest(page_size=1000))
    assert len(everything) == RUNS
    ids = [r.id for r in everything]
    assert ids == newest_first(everything) and len(set(ids)) == RUNS
    for size, pages in ((1, 250), (7, 36), (10, 25), (100, 3), (0, 3)):
        found, count = await every_page(scheduler, scheduler_pb2.ListJobRunsRequest(page_size=size))
        assert ([r.id for r in found], count) == (ids, pages), size

    originals, _ = await every_page(scheduler, scheduler_pb2.ListJobRunsRequest(page_size=1000))
    started: list[str] = []

    async def start_more(page: int) -> None:
        for name in DISCOVERIES:
            started.append((await start_run(scheduler, name)).id)
        if page % 2:
            scheduler.clock.advance(seconds=1)

    found, _ = await every_page(scheduler, scheduler_pb2.ListJobRunsRequest(page_size=9), between_pages=start_more)
    ids = [r.id for r in found]
    assert len(ids) == len(set(ids)), "a run was listed twice"
    original_ids = [r.id for r in originals]
    assert [i for i in ids if i in set(original_ids)] == original_ids
    assert set(ids) - set(original_ids) <= set(started)
    assert not set(ids) & set(started)  # all newer than the reader's position: ahead of page 1


async def test_filters_by_discovery_state_collector_and_creation_time(small_scheduler: RunningScheduler) -> None:
    scheduler = small_scheduler
    everything, _ = await every_page(scheduler, scheduler_pb2.ListJobRunsRequest(page_size=1000))
    assert len(everything) == SMALL_RUNS
    beta, pages = await every_page(scheduler, scheduler_pb2.ListJobRunsRequest(discovery="beta", page_size=4))
    assert [r.id for r in beta] == [r.id for r in everything if r.discovery == "beta"]
    assert (len(beta), pages) == (10, 3)
    since = Timestamp()
    since.FromDatetime(everything[0].created_at.ToDatetime() - timedelta(seconds=1))
    recent, _ = await every_page(scheduler, scheduler_pb2.ListJobRunsRequest(created_since=since, page_size=7))
    assert [r.id for r in recent] == [r.id for r in everything if r.created_at.ToDatetime() >= since.ToDatetime()]
    assert len(recent) == 20  # the last two seconds of three
    await scheduler.stub.CancelJobRun(scheduler_pb2.CancelJobRunRequest(id=everything[5].id))
    cancelled, _ = await every_page(scheduler, scheduler_pb2.ListJobRunsRequest(state=JS.JOB_STATE_CANCELLED))
    assert [r.id for r in cancelled] == [everything[5].id]
    nobody, _ = await every_page(scheduler, scheduler_pb2.ListJobRunsRequest(collector="edge-404"))
    assert nobody == []


async def test_a_token_sent_with_other_filters_is_refused(small_scheduler: RunningScheduler) -> None:
    scheduler = small_scheduler
    first = await scheduler.stub.ListJobRuns(scheduler_pb2.ListJobRunsRequest(discovery="alpha", page_size=5))
    for changed in (
        scheduler_pb2.ListJobRunsRequest(discovery="beta", page_token=first.next_page_token),
        scheduler_pb2.ListJobRunsRequest(page_token=first.next_page_token),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scheduler.stub.ListJobRuns(changed)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "issued for other filters" in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await scheduler.stub.ListDiscoveries(scheduler_pb2.ListDiscoveriesRequest(page_token=first.next_page_token))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "belongs to another list" in (refused.value.details() or "")


async def test_discoveries_and_schedules_page_by_name(small_scheduler: RunningScheduler) -> None:
    scheduler = small_scheduler
    for n in range(5):
        await create_schedule(scheduler, f"sched-{n}", discovery=DISCOVERIES[n % 2])
    names: list[str] = []
    token = ""
    while True:
        page = await scheduler.stub.ListDiscoveries(scheduler_pb2.ListDiscoveriesRequest(page_size=2, page_token=token))
        names += [d.name for d in page.discoveries]
        token = page.next_page_token
        if not token:
            break
    assert names == list(DISCOVERIES)
    first = await scheduler.stub.ListSchedules(scheduler_pb2.ListSchedulesRequest(discovery="alpha", page_size=2))
    rest = await scheduler.stub.ListSchedules(
        scheduler_pb2.ListSchedulesRequest(discovery="alpha", page_size=2, page_token=first.next_page_token)
    )
    assert [s.name for s in [*first.schedules, *rest.schedules]] == ["sched-0", "sched-2", "sched-4"]
    assert rest.next_page_token == ""
