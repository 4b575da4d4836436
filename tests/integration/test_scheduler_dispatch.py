"""Claims, the missed-run policy, progress reports and cancelling, as gateways and admins see them."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC

import grpc

from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2
from tests.integration.test_scheduler_admin import expect_error
from tests.integration.test_scheduler_support import (
    JS,
    FakeClock,
    RunningScheduler,
    claim,
    create_discovery,
    create_schedule,
    get_run,
    is_postgres,
    list_runs,
    report,
    running_scheduler,
    start_run,
    utc,
)


async def test_runs_go_to_the_named_collector_or_any_collector_of_the_zone(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, "core", collector="edge-7")
        await create_discovery(scheduler, "lab", zone="lab")
        named = await start_run(scheduler, "core")
        zoned = await start_run(scheduler, "lab")

        assert await claim(scheduler, "edge-8", zone="dmz") == []
        assert await claim(scheduler, "edge-9", zone="") == []  # no zone matches no zone run
        [first] = await claim(scheduler, "edge-7", zone="dmz")
        [second] = await claim(scheduler, "edge-3", zone="lab")

        assert (first.id, first.state, first.collector, first.collector_instance_uid, first.gateway_id) == (
            named.id,
            JS.JOB_STATE_DISPATCHED,
            "edge-7",
            "uid-edge-7",
            "gw-1",
        )
        assert first.discovery_snapshot.collector == "edge-7" and first.HasField("dispatched_at")
        assert (second.id, second.collector, second.target_zone) == (zoned.id, "edge-3", "lab")
        assert await claim(scheduler, "edge-4", zone="lab") == []


async def test_concurrent_claims_for_one_zone_never_hand_out_a_run_twice(database_url: str) -> None:
    async with AsyncExitStack() as stack:
        replicas: list[RunningScheduler] = [await stack.enter_async_context(running_scheduler(database_url))]
        if is_postgres(database_url):  # a second replica on the same database
            replicas.append(await stack.enter_async_context(running_scheduler(database_url, replicas[0].clock)))
        await create_discovery(replicas[0], zone="dmz")
        queued = {(await start_run(replicas[0])).id for _ in range(12)}

        collectors = [f"edge-{i}" for i in range(6)]
        results = await asyncio.gather(
            *(
                claim(replicas[i % len(replicas)], name, gateway=f"gw-{i % 2}", limit=3)
                for i, name in enumerate(collectors * 2)
            )
        )

        handed_out = [run.id for runs in results for run in runs]
        assert sorted(handed_out) == sorted(queued)  # every run exactly once
        per_collector = Counter(run.collector for runs in results for run in runs)
        assert max(per_collector.values()) <= 3
        stored = await list_runs(replicas[0], state=JS.JOB_STATE_DISPATCHED)
        assert {(r.id, r.collector) for r in stored} == {(r.id, r.collector) for runs in results for r in runs}


async def test_a_collector_busy_with_a_run_gets_nothing_more_unless_its_limit_allows(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, collector="edge-7")
        runs = [await start_run(scheduler) for _ in range(3)]
        [first] = await claim(scheduler, "edge-7")
        await report(scheduler, first.id, JS.JOB_STATE_RUNNING)

        assert await claim(scheduler, "edge-7") == []
        assert [r.id for r in await claim(scheduler, "edge-7", limit=2)] == [runs[1].id]
        await report(scheduler, first.id, JS.JOB_STATE_SUCCEEDED)
        assert [r.id for r in await claim(scheduler, "edge-7", limit=2)] == [runs[2].id]


async def test_missed_runs_are_skipped_or_run_once_by_their_schedules_policy(database_url: str) -> None:
    async with running_scheduler(database_url, FakeClock(utc(2025, 6, 2, 9, 55))) as scheduler:
        await create_discovery(scheduler, "a", collector="edge-7")
        await create_discovery(scheduler, "b", collector="edge-8")
        await create_schedule(
            scheduler, "skip", discovery="a", minute="*/10", policy=scheduler_pb2.MISSED_RUN_POLICY_SKIP
        )
        await create_schedule(
            scheduler, "once", discovery="b", minute="*/10", policy=scheduler_pb2.MISSED_RUN_POLICY_RUN_ONCE
        )
        manual = await start_run(scheduler, "a")
        for minute in (0, 10, 20, 30):  # both collectors are away while these fall due
            scheduler.clock.set(utc(2025, 6, 2, 10, minute, 1))
            await scheduler.tick()
        scheduler.clock.set(utc(2025, 6, 2, 10, 45))  # 10:30 is older than 5 min + 1 min: missed

        skipped = await claim(scheduler, "edge-7", limit=5)
        once = await claim(scheduler, "edge-8", limit=5)

        assert [r.id for r in skipped] == [manual.id]  # manual runs are never missed
        missed = [r for r in await list_runs(scheduler, discovery="a") if r.trigger == "schedule"]
        assert len(missed) == 4
        # Under skip a schedule keeps one waiting run: each newer due minute superseded the
        # one before at the tick; the newest was missed when the collector came back.
        by_due = sorted(missed, key=lambda r: r.due_at.ToDatetime(tzinfo=UTC))
        assert all(r.state == JS.JOB_STATE_CANCELLED and r.cancelled_by == "scheduler" for r in by_due)
        assert [r.reason.split(":")[0] for r in by_due] == ["superseded", "superseded", "superseded", "missed"]
        assert by_due[-1].reason == "missed: collector was offline when it fell due"
        assert [r.due_at.ToDatetime(tzinfo=UTC) for r in once] == [utc(2025, 6, 2, 10, 30)]
        older = await list_runs(scheduler, discovery="b", state=JS.JOB_STATE_CANCELLED)
        assert sorted(r.due_at.ToDatetime(tzinfo=UTC).minute for r in older) == [0, 10, 20]
        assert {r.reason for r in older} == {"superseded by a newer missed run"}


async def test_a_run_reports_running_progress_and_a_final_state_with_coalesced_progress_events(
    database_url: str,
) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, collector="edge-7")
        run = await start_run(scheduler)
        await claim(scheduler, "edge-7")
        started_at = scheduler.clock.advance(seconds=2)

        running = await report(scheduler, run.id, JS.JOB_STATE_RUNNING, targets_total=256)
        scheduler.clock.advance(seconds=30)
        progressed = await report(scheduler, run.id, JS.JOB_STATE_RUNNING, targets_total=256, targets_done=100)
        finished_at = scheduler.clock.advance(seconds=30)
        done = await report(
            scheduler,
            run.id,
            JS.JOB_STATE_SUCCEEDED,
            targets_total=256,
            targets_done=256,
            devices_found=12,
            batches_sent=3,
        )

        assert (running.state, running.started_at.ToDatetime(tzinfo=UTC)) == (JS.JOB_STATE_RUNNING, started_at)
        assert progressed.targets_done == 100
        assert (done.state, done.devices_found, done.batches_sent, done.targets_done) == (
            JS.JOB_STATE_SUCCEEDED,
            12,
            3,
            256,
        )
        assert done.finished_at.ToDatetime(tzinfo=UTC) == finished_at
        assert await get_run(scheduler, run.id) == done

        # Progress events: at most one per run every half second; state changes always.
        run = await start_run(scheduler)
        await claim(scheduler, "edge-7")
        store = scheduler.server.store

        before = await store.newest_revision()
        await report(scheduler, run.id, JS.JOB_STATE_RUNNING, targets_done=1)
        for count in (2, 3, 4):  # within half a second of the last event
            await report(scheduler, run.id, JS.JOB_STATE_RUNNING, targets_done=count)
        assert await store.newest_revision() == before + 1
        assert (await get_run(scheduler, run.id)).targets_done == 4  # counters are still written

        scheduler.clock.advance(seconds=1)
        await report(scheduler, run.id, JS.JOB_STATE_RUNNING, targets_done=5)
        await report(scheduler, run.id, JS.JOB_STATE_FAILED, error="network unreachable")
        assert await store.newest_revision() == before + 3
        failed = await get_run(scheduler, run.id)
        assert (failed.state, failed.reason) == (JS.JOB_STATE_FAILED, "network unreachable")


async def test_reports_come_only_from_the_runs_holder_and_a_queued_run_cancels_at_once(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, collector="edge-7")
        run = await start_run(scheduler)
        await expect_error(
            report(scheduler, run.id, JS.JOB_STATE_RUNNING),
            grpc.StatusCode.FAILED_PRECONDITION,
            f"job run {run.id} is not dispatched to collector uid-edge-7: it is queued",
        )
        await claim(scheduler, "edge-7")
        await expect_error(
            report(scheduler, run.id, JS.JOB_STATE_RUNNING, collector="edge-8"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "dispatched to collector 'edge-7'",
        )
        await expect_error(
            report(scheduler, run.id, JS.JOB_STATE_QUEUED),
            grpc.StatusCode.INVALID_ARGUMENT,
            "reports running or a final state",
        )
        await expect_error(
            report(scheduler, "jr_unknown", JS.JOB_STATE_RUNNING), grpc.StatusCode.NOT_FOUND, "no job run"
        )

        await create_discovery(scheduler, "lab", zone="lab")
        run = await start_run(scheduler, "lab")
        response = await scheduler.stub.CancelJobRun(
            scheduler_pb2.CancelJobRunRequest(id=run.id, reason="wrong subnet")
        )
        cancelled = response.job_run
        assert (cancelled.state, cancelled.reason, cancelled.cancelled_by) == (
            JS.JOB_STATE_CANCELLED,
            "wrong subnet",
            "alice",
        )
        assert await claim(scheduler, "edge-3", zone="lab") == []
        await expect_error(
            scheduler.stub.CancelJobRun(scheduler_pb2.CancelJobRunRequest(id=run.id)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "already finished (cancelled)",
        )
        await expect_error(
            scheduler.stub.CancelJobRun(scheduler_pb2.CancelJobRunRequest(id="jr_nope")),
            grpc.StatusCode.NOT_FOUND,
            "no job run with id 'jr_nope'",
        )


async def test_a_cancelled_run_stays_cancelled_whatever_its_collector_reports(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, collector="edge-7")
        dispatched, running = await start_run(scheduler), await start_run(scheduler)
        await claim(scheduler, "edge-7", limit=2)
        await report(scheduler, running.id, JS.JOB_STATE_RUNNING)

        for run in (dispatched, running):
            response = await scheduler.stub.CancelJobRun(scheduler_pb2.CancelJobRunRequest(id=run.id))
            # Its gateway learns whom to tell from the run: the collector that holds it.
            assert (response.job_run.state, response.job_run.collector_instance_uid) == (
                JS.JOB_STATE_CANCELLED,
                "uid-edge-7",
            )
            late_progress = await report(scheduler, run.id, JS.JOB_STATE_RUNNING, targets_done=9)
            late_final = await report(scheduler, run.id, JS.JOB_STATE_SUCCEEDED, devices_found=4)

            assert late_progress.state == late_final.state == JS.JOB_STATE_CANCELLED
            stored = await get_run(scheduler, run.id)
            assert (stored.state, stored.reason, stored.devices_found) == (
                JS.JOB_STATE_CANCELLED,
                "cancelled by alice",
                0,
            )


async def test_the_gateways_stale_count_is_recorded_in_any_state_and_never_goes_down(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, collector="edge-7")
        run = await start_run(scheduler)
        await claim(scheduler, "edge-7")
        await report(scheduler, run.id, JS.JOB_STATE_SUCCEEDED, devices_found=2)

        async def stale(total: int, uid: str = "uid-edge-7") -> scheduler_pb2.JobRun:
            response = await scheduler.stub.ReportJobUpdate(
                scheduler_pb2.ReportJobUpdateRequest(
                    gateway_id="gw-1",
                    collector_instance_uid=uid,
                    update=agent_pb2.JobUpdate(job_run_id=run.id),
                    observations_stale=total,
                )
            )
            return response.job_run

        # A spooled batch landing after the run ended, from whichever collector delivered it.
        answered = await stale(2, uid="uid-edge-8")
        assert (answered.state, answered.observations_stale) == (JS.JOB_STATE_SUCCEEDED, 2)
        await stale(1)  # an older total, delivered late
        stored = await get_run(scheduler, run.id)
        assert (stored.state, stored.devices_found, stored.observations_stale) == (JS.JOB_STATE_SUCCEEDED, 2, 2)
        await expect_error(stale_for_unknown_run(scheduler), grpc.StatusCode.NOT_FOUND, "jr_nosuch")


async def stale_for_unknown_run(scheduler: RunningScheduler) -> None:
    await scheduler.stub.ReportJobUpdate(
        scheduler_pb2.ReportJobUpdateRequest(
            gateway_id="gw-1",
            collector_instance_uid="uid-edge-7",
            update=agent_pb2.JobUpdate(job_run_id="jr_nosuch"),
            observations_stale=1,
        )
    )
