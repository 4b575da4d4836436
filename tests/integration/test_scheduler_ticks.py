"""The tick loop: due minutes become runs exactly once; overdue runs time out (leases: test_scheduler_leases)."""

from __future__ import annotations

from datetime import UTC

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from outpost.scheduler.v1 import scheduler_pb2
from tests.integration.test_scheduler_support import (
    JS,
    FakeClock,
    all_read_before_any_writes,
    claim,
    create_discovery,
    create_schedule,
    eventually,
    get_run,
    is_postgres,
    list_runs,
    report,
    running_scheduler,
    start_run,
    utc,
)


async def test_a_schedule_due_in_the_next_minute_creates_exactly_one_run_by_itself(database_url: str) -> None:
    clock = FakeClock(utc(2025, 6, 2, 9, 59, 30))
    async with running_scheduler(database_url, clock, tick_interval=0.02) as scheduler:
        await create_discovery(scheduler)
        await create_schedule(scheduler, "every-minute")
        assert await list_runs(scheduler) == []

        clock.set(utc(2025, 6, 2, 10, 0, 0, 400_000))

        async def one_run() -> bool:
            return len(await list_runs(scheduler)) == 1

        await eventually(one_run, what="the due run")
        for _ in range(3):  # more ticks in the same minute, beside the loop's own
            await scheduler.tick()
            clock.advance(seconds=15)
        runs = await list_runs(scheduler)
        assert len(runs) == 1
        run = runs[0]
        assert (run.trigger, run.schedule, run.state) == ("schedule", "every-minute", JS.JOB_STATE_QUEUED)
        assert run.due_at.ToDatetime(tzinfo=UTC) == utc(2025, 6, 2, 10, 0)
        listed = await scheduler.stub.ListSchedules(scheduler_pb2.ListSchedulesRequest())
        assert listed.schedules[0].last_due_at.ToDatetime(tzinfo=UTC) == utc(2025, 6, 2, 10, 0)


async def test_schedules_start_at_creation_skip_when_disabled_and_catch_up_only_the_newest_minute(
    database_url: str,
) -> None:
    clock = FakeClock(utc(2025, 6, 2, 10, 0, 30))
    async with running_scheduler(database_url, clock) as scheduler:
        await create_discovery(scheduler)
        await create_schedule(scheduler, "every-5", minute="*/5")  # 10:00 passed before it existed
        await create_schedule(scheduler, "off", enabled=False)
        assert (await scheduler.tick()).created == ()
        missed_before = REGISTRY.get_sample_value("outpost_scheduler_due_runs_missed_total") or 0.0

        clock.set(utc(2025, 6, 2, 11, 12))  # no replica ticked for 71 minutes
        created = (await scheduler.tick()).created

        assert [(r.schedule, r.due_at) for r in created] == [("every-5", utc(2025, 6, 2, 11, 10))]
        assert len(await list_runs(scheduler)) == 1
        missed = REGISTRY.get_sample_value("outpost_scheduler_due_runs_missed_total") or 0.0
        assert missed - missed_before == 13  # 10:05 .. 11:05, counted and logged, not queued
        clock.set(utc(2025, 6, 2, 11, 15, 1))
        assert [r.due_at for r in (await scheduler.tick()).created] == [utc(2025, 6, 2, 11, 15)]


async def test_daylight_saving_time_is_followed_by_the_tick(database_url: str) -> None:
    clock = FakeClock(utc(2025, 10, 25, 12))
    async with running_scheduler(database_url, clock) as scheduler:
        await create_discovery(scheduler)
        await create_schedule(scheduler, "nightly", minute="30", hour="2", timezone="Europe/Berlin")
        due = []
        # 02:30 CEST, 02:30 again (CET) on the night clocks go back, then 02:30 CET next night.
        for moment in (utc(2025, 10, 26, 0, 30, 5), utc(2025, 10, 26, 1, 30, 5), utc(2025, 10, 27, 1, 30, 5)):
            clock.set(moment)
            due += [r.due_at for r in (await scheduler.tick()).created]
        assert due == [utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)]


async def test_two_replicas_racing_create_each_due_run_once(database_url: str) -> None:
    if not is_postgres(database_url):
        pytest.skip("several replicas share PostgreSQL; SQLite is one process per file")
    clock = FakeClock(utc(2025, 6, 2, 9, 59, 59))
    async with running_scheduler(database_url, clock) as a, running_scheduler(database_url, clock) as b:
        await create_discovery(a)
        for i in range(8):
            await create_schedule(a, f"every-minute-{i}")
        created = []
        with capture_logs() as logs:
            for minute in range(3):
                clock.set(utc(2025, 6, 2, 10, minute, 0, 500_000))
                reports = await all_read_before_any_writes(database_url, [a.tick, b.tick])
                created += [r for report in reports for r in report.created]

        runs = await list_runs(a, limit=1000)
        assert len(runs) == 8 * 3
        assert len({(r.schedule, r.due_at.ToDatetime()) for r in runs}) == 24
        assert sorted(r.id for r in created) == sorted(r.id for r in runs)
        # Both replicas found each due minute; the unique key turned one of them away.
        assert sum(e["runs"] for e in logs if e["event"] == "due_runs_created_elsewhere") == 8 * 3
        assert {len(r.created) for r in reports} == {0, 8}


async def test_a_running_run_past_its_deadline_times_out_and_stays_timed_out(database_url: str) -> None:
    async with running_scheduler(database_url, lease_seconds=3600) as scheduler:
        await create_discovery(scheduler, "core", collector="edge-7", deadline_seconds=120)
        run = await start_run(scheduler, "core")
        await claim(scheduler, "edge-7")
        await report(scheduler, run.id, JS.JOB_STATE_RUNNING, targets_total=256)

        scheduler.clock.advance(seconds=120 + 60)
        assert (await scheduler.tick()).timed_out == ()
        scheduler.clock.advance(seconds=1)
        [timed_out] = (await scheduler.tick()).timed_out

        after = await get_run(scheduler, run.id)
        assert timed_out.id == run.id
        assert after.state == JS.JOB_STATE_TIMED_OUT and after.HasField("finished_at")
        assert not after.HasField("lease_expires_at")
        assert "deadline (120 s)" in after.reason
        late = await report(scheduler, run.id, JS.JOB_STATE_SUCCEEDED, devices_found=3)
        assert late.state == JS.JOB_STATE_TIMED_OUT  # a late final update does not resurrect it


async def test_a_run_past_its_deadline_whose_lease_also_expired_times_out_rather_than_retrying(
    database_url: str,
) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, "core", collector="edge-7", deadline_seconds=30)
        run = await start_run(scheduler, "core")
        await claim(scheduler, "edge-7")
        await report(scheduler, run.id, JS.JOB_STATE_RUNNING)

        scheduler.clock.advance(seconds=120)  # deadline + grace = 90 s; lease = 90 s
        swept = await scheduler.tick()

        assert ([r.id for r in swept.timed_out], swept.requeued, swept.failed) == ([run.id], (), ())
        assert (await get_run(scheduler, run.id)).state == JS.JOB_STATE_TIMED_OUT


async def test_a_skip_schedule_nobody_claims_keeps_one_waiting_run_not_one_per_minute(database_url: str) -> None:
    clock = FakeClock(utc(2025, 6, 2, 9, 59, 30))
    async with running_scheduler(database_url, clock) as scheduler:
        await create_discovery(scheduler, collector="nosuch")
        await create_schedule(scheduler, "every-minute", policy=scheduler_pb2.MISSED_RUN_POLICY_SKIP)
        await create_schedule(scheduler, "run-once-kept", policy=scheduler_pb2.MISSED_RUN_POLICY_RUN_ONCE)
        for minute in range(5):  # five due minutes, nobody ever claims
            clock.set(utc(2025, 6, 2, 10, minute, 1))
            await scheduler.tick()

        runs = await list_runs(scheduler)
        skip = [r for r in runs if r.schedule == "every-minute"]
        waiting = [r for r in skip if r.state == JS.JOB_STATE_QUEUED]
        assert [r.due_at.ToDatetime(tzinfo=UTC) for r in waiting] == [utc(2025, 6, 2, 10, 4)]
        cancelled = [r for r in skip if r.state == JS.JOB_STATE_CANCELLED]
        assert len(cancelled) == 4
        assert all(
            r.reason.startswith("superseded: never claimed") and r.cancelled_by == "scheduler" for r in cancelled
        )
        kept = [r for r in runs if r.schedule == "run-once-kept"]
        assert len(kept) == 5 and all(r.state == JS.JOB_STATE_QUEUED for r in kept)  # run_once: the claim decides
