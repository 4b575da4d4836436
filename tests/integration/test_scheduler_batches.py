"""Many runs at once (ADR 0033): one tick creates them all, claims and updates share transactions.

On SQLite and PostgreSQL: 200 schedules due in one minute become exactly one run each in
one tick (two replicas racing on PostgreSQL); 200 collectors claiming at once each get
their own run, and the calls decided in one batch each keep their own outcome (a refused
update does not fail the claims beside it).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack
from datetime import timedelta

import grpc

from outpost import errors
from outpost.scheduler.v1 import scheduler_pb2
from services.scheduler.write_batches import WriteBatches
from tests.integration.test_scheduler_support import (
    JS,
    RunningScheduler,
    claim,
    create_discovery,
    create_schedule,
    is_postgres,
    list_runs,
    report,
    running_scheduler,
    start_run,
)

MANY = 200


async def _many_schedules(scheduler: RunningScheduler, count: int) -> None:
    """`count` discoveries, one per collector c000.., each with a schedule due at 10:00 UTC."""
    for i in range(count):
        await create_discovery(scheduler, f"d{i:03d}", collector=f"c{i:03d}")
        await create_schedule(scheduler, f"s{i:03d}", discovery=f"d{i:03d}", minute="0", hour="10")


async def _all_runs(scheduler: RunningScheduler) -> list[scheduler_pb2.JobRun]:
    return await list_runs(scheduler, page_size=1000)


async def test_two_hundred_schedules_due_in_one_tick_become_exactly_one_run_each(database_url: str) -> None:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(running_scheduler(database_url))
        replicas = [first]
        if is_postgres(database_url):  # a second replica ticking at the same instant
            replicas.append(await stack.enter_async_context(running_scheduler(database_url, first.clock)))
        await _many_schedules(first, MANY)
        due = first.clock.now.replace(hour=10, minute=0, second=0, microsecond=0)
        first.clock.set(due + timedelta(seconds=1))

        reports = await asyncio.gather(*(r.tick() for r in replicas))
        assert sum(len(r.created) for r in reports) == MANY

        runs = await _all_runs(first)
        assert len(runs) == MANY
        per_schedule = Counter(run.discovery for run in runs)
        assert set(per_schedule.values()) == {1} and len(per_schedule) == MANY
        assert {run.due_at.ToDatetime().replace(tzinfo=due.tzinfo) for run in runs} == {due}
        assert {run.state for run in runs} == {JS.JOB_STATE_QUEUED}

        # The next tick in the same minute creates nothing more, and each schedule moved on.
        assert [len(r.created) for r in await asyncio.gather(*(r.tick() for r in replicas))] == [0] * len(replicas)
        schedules = (await first.stub.ListSchedules(scheduler_pb2.ListSchedulesRequest(page_size=1000))).schedules
        assert {s.next_due_at.ToDatetime().replace(tzinfo=due.tzinfo) for s in schedules} == {due + timedelta(days=1)}


async def test_two_hundred_collectors_claiming_at_once_each_get_their_own_run_once(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await _many_schedules(scheduler, MANY)
        scheduler.clock.set(scheduler.clock.now.replace(hour=10, minute=0, second=1))
        assert len((await scheduler.tick()).created) == MANY
        # Every collector claims twice at once: one of the two gets its run, never both.
        answers = await asyncio.gather(
            *(claim(scheduler, f"c{i % MANY:03d}", zone="", uid=f"uid-{i}") for i in range(2 * MANY))
        )
        claimed = [run for answer in answers for run in answer]
        assert len(claimed) == MANY and len({run.id for run in claimed}) == MANY
        assert all(run.collector == run.target_collector for run in claimed)
        assert {run.state for run in await _all_runs(scheduler)} == {JS.JOB_STATE_DISPATCHED}


async def test_a_zone_of_collectors_claiming_at_once_takes_each_run_once(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, "lab", zone="lab")
        runs = [await start_run(scheduler, "lab") for _ in range(30)]
        answers = await asyncio.gather(*(claim(scheduler, f"edge-{i}", zone="lab") for i in range(50)))
        claimed = [run.id for answer in answers for run in answer]
        assert sorted(claimed) == sorted(run.id for run in runs)  # each once, one per collector
        assert all(len(answer) <= 1 for answer in answers)


async def test_calls_decided_in_one_batch_keep_their_own_outcome(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, "core", collector="edge-7")
        await create_discovery(scheduler, "lab", collector="edge-8")
        run = await start_run(scheduler, "core")
        other = await start_run(scheduler, "lab")
        [taken] = await claim(scheduler, "edge-7", zone="")

        # In one batch: an update from the wrong collector (refused), the holder's update,
        # and another collector's claim.
        wrong, right, claimed = await asyncio.gather(
            report(scheduler, taken.id, JS.JOB_STATE_RUNNING, collector="edge-9"),
            report(scheduler, run.id, JS.JOB_STATE_RUNNING, collector="edge-7"),
            claim(scheduler, "edge-8", zone=""),
            return_exceptions=True,
        )
        assert isinstance(wrong, grpc.aio.AioRpcError)
        assert wrong.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert not isinstance(right, BaseException) and right.state == JS.JOB_STATE_RUNNING
        assert not isinstance(claimed, BaseException) and [r.id for r in claimed] == [other.id]


async def test_a_batch_whose_transaction_fails_runs_each_call_again_alone(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        server = scheduler.server
        store, hub = server.store, server.hub
        await create_discovery(scheduler, "core", collector="edge-7")
        run = await start_run(scheduler, "core")
        batches = WriteBatches(store, hub, claims=_no_claims, claim_filter=_no_claims_filter)

        async def broken(tx: object) -> None:
            raise RuntimeError("the database went away")  # not a refusal: fails the batch

        async def refused(tx: object) -> None:
            raise errors.FailedPrecondition("not yours")

        async def reads(tx: object) -> str:
            found = await tx.job_run(run.id)  # type: ignore[attr-defined]
            assert found is not None
            return str(found.id)

        outcomes = await asyncio.gather(
            batches.submit(broken), batches.submit(refused), batches.submit(reads), return_exceptions=True
        )
        assert isinstance(outcomes[0], RuntimeError)
        assert isinstance(outcomes[1], errors.FailedPrecondition)
        assert outcomes[2] == run.id


async def _no_claims(tx: object, requests: object) -> list[object]:
    return []


async def _no_claims_filter(requests: object) -> list[object]:
    return []
