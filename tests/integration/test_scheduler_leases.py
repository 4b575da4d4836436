"""Leases on runs: claims lease, holders renew, the ticker takes back what nobody renews (ADR 0010)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
from structlog.testing import capture_logs

from outpost.scheduler.v1 import scheduler_pb2
from tests.integration.test_scheduler_admin import expect_error
from tests.integration.test_scheduler_support import (
    JS,
    START,
    FakeClock,
    all_read_before_any_writes,
    claim,
    create_discovery,
    get_run,
    holding_event_lock,
    is_postgres,
    lease_of,
    list_runs,
    renew,
    report,
    running_scheduler,
    start_run,
    watching,
)

LEASE = timedelta(seconds=90)


async def test_a_claim_is_attempt_one_with_a_lease_that_renewals_and_updates_extend(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, zone="dmz")
        run = await start_run(scheduler)
        assert (run.attempt, run.HasField("lease_expires_at")) == (0, False)

        [taken] = await claim(scheduler, "edge-7")
        assert (taken.attempt, lease_of(taken)) == (1, START + LEASE)
        stored = await get_run(scheduler, run.id)
        assert (stored.attempt, lease_of(stored)) == (1, START + LEASE)

        scheduler.clock.advance(seconds=60)
        renewed = await renew(scheduler, (run.id, "uid-edge-7"))
        assert (list(renewed.lost), renewed.lease_seconds) == ([], 90)
        assert lease_of(await get_run(scheduler, run.id)) == START + timedelta(seconds=150)

        scheduler.clock.advance(seconds=60)  # past the first lease, within the renewed one
        assert (await scheduler.tick()).requeued == ()
        running = await report(scheduler, run.id, JS.JOB_STATE_RUNNING, attempt=1)
        assert (running.state, running.attempt, lease_of(running)) == (
            JS.JOB_STATE_RUNNING,
            1,
            START + timedelta(seconds=210),
        )
        scheduler.clock.advance(seconds=89)
        assert (await scheduler.tick()).requeued == ()

        done = await report(scheduler, run.id, JS.JOB_STATE_SUCCEEDED, attempt=1)
        assert (done.state, done.HasField("lease_expires_at")) == (JS.JOB_STATE_SUCCEEDED, False)


async def test_a_collector_that_stops_renewing_loses_the_run_to_another_collector_of_the_zone(
    database_url: str,
) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, zone="dmz")
        run = await start_run(scheduler)
        await claim(scheduler, "edge-7")
        await report(scheduler, run.id, JS.JOB_STATE_RUNNING, targets_total=256, targets_done=40, attempt=1)
        scheduler.clock.advance(seconds=89)
        assert (await scheduler.tick()).requeued == ()

        revision = await scheduler.server.store.newest_revision()
        async with watching(scheduler, revision) as watch:
            assert (await watch.next()).WhichOneof("body") == "bookmark"  # caught up: now live
            scheduler.clock.advance(seconds=1)  # the lease from the RUNNING update ran out
            with capture_logs() as logs:
                [requeued] = (await scheduler.tick()).requeued
            event = await watch.next_change()

        reason = "collector 'edge-7' stopped renewing the lease of attempt 1; queued for attempt 2 of 3"
        assert (requeued.id, requeued.reason) == (run.id, reason)
        # Gateways learn it from the feed and wake the zone's collectors to claim it.
        assert (event.job_run.id, event.job_run.state, event.job_run.attempt) == (run.id, JS.JOB_STATE_QUEUED, 1)
        stored = await get_run(scheduler, run.id)
        assert (stored.state, stored.collector, stored.collector_instance_uid, stored.gateway_id, stored.reason) == (
            JS.JOB_STATE_QUEUED,
            "",
            "",
            "",
            reason,
        )
        assert (stored.attempt, stored.HasField("lease_expires_at"), stored.targets_done) == (1, False, 0)
        [logged] = [e for e in logs if e["event"] == "lease_expired"]
        assert (logged["collector"], logged["attempt"], logged["outcome"]) == ("edge-7", 1, "requeued")

        lost = await renew(scheduler, (run.id, "uid-edge-7"))
        assert [(x.job_run_id, x.collector_instance_uid, x.reason) for x in lost.lost] == [
            (run.id, "uid-edge-7", f"job run {run.id} is queued again: {reason}")
        ]
        await expect_error(
            report(scheduler, run.id, JS.JOB_STATE_RUNNING, attempt=1),
            grpc.StatusCode.FAILED_PRECONDITION,
            "it is queued",
        )

        [again] = await claim(scheduler, "edge-8", gateway="gw-2")
        now = scheduler.clock.now
        assert (again.id, again.collector, again.attempt, lease_of(again)) == (run.id, "edge-8", 2, now + LEASE)
        lost = await renew(scheduler, (run.id, "uid-edge-7"))
        assert [x.reason for x in lost.lost] == [f"job run {run.id} is attempt 2 on collector 'edge-8' (uid-edge-8)"]
        await expect_error(
            report(scheduler, run.id, JS.JOB_STATE_SUCCEEDED, attempt=1),
            grpc.StatusCode.FAILED_PRECONDITION,
            "dispatched to collector 'edge-8'",
        )
        done = await report(scheduler, run.id, JS.JOB_STATE_SUCCEEDED, collector="edge-8", attempt=2)
        assert (done.state, done.attempt) == (JS.JOB_STATE_SUCCEEDED, 2)


async def test_a_dispatch_nobody_acknowledges_is_taken_back_when_its_lease_expires(database_url: str) -> None:
    async with running_scheduler(database_url, lease_seconds=30) as scheduler:
        await create_discovery(scheduler, collector="edge-7")
        run = await start_run(scheduler)
        [taken] = await claim(scheduler, "edge-7")
        assert lease_of(taken) == START + timedelta(seconds=30)

        scheduler.clock.advance(seconds=29)
        assert (await scheduler.tick()).requeued == ()
        scheduler.clock.advance(seconds=1)
        [requeued] = (await scheduler.tick()).requeued

        assert requeued.id == run.id
        [again] = await claim(scheduler, "edge-7")  # the same collector, restarted, takes attempt 2
        assert (again.attempt, again.collector_instance_uid) == (2, "uid-edge-7")


async def test_a_run_whose_last_attempt_expires_is_failed(database_url: str) -> None:
    async with running_scheduler(database_url, max_attempts=2) as scheduler:
        await create_discovery(scheduler, zone="dmz")
        run = await start_run(scheduler)
        for attempt, collector in ((1, "edge-7"), (2, "edge-8")):
            [taken] = await claim(scheduler, collector)
            assert taken.attempt == attempt
            scheduler.clock.advance(seconds=90)
            swept = await scheduler.tick()
        assert (swept.requeued, [r.id for r in swept.failed]) == ((), [run.id])

        failed = await get_run(scheduler, run.id)
        assert (failed.state, failed.attempt, failed.collector, failed.HasField("finished_at")) == (
            JS.JOB_STATE_FAILED,
            2,
            "edge-8",
            True,
        )
        assert failed.reason == (
            "collector 'edge-8' stopped renewing the lease of attempt 2; giving up after 2 attempts (--max-attempts 2)"
        )
        assert not failed.HasField("lease_expires_at")
        assert await claim(scheduler, "edge-9") == []
        lost = await renew(scheduler, (run.id, "uid-edge-8"))
        assert [x.reason for x in lost.lost] == [f"job run {run.id} already finished (failed): {failed.reason}"]
        late = await report(scheduler, run.id, JS.JOB_STATE_SUCCEEDED, collector="edge-8", attempt=2)
        assert late.state == JS.JOB_STATE_FAILED  # final stays final


async def test_an_update_about_a_superseded_attempt_is_refused(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, collector="edge-7")
        run = await start_run(scheduler)
        await claim(scheduler, "edge-7")
        scheduler.clock.advance(seconds=90)
        await scheduler.tick()
        [second] = await claim(scheduler, "edge-7")  # the same instance took it again
        assert second.attempt == 2

        for state in (JS.JOB_STATE_RUNNING, JS.JOB_STATE_SUCCEEDED):
            await expect_error(
                report(scheduler, run.id, state, attempt=1, devices_found=5),
                grpc.StatusCode.FAILED_PRECONDITION,
                f"job run {run.id} attempt 1 was superseded by attempt 2",
            )
        assert (await get_run(scheduler, run.id)).state == JS.JOB_STATE_DISPATCHED

        running = await report(scheduler, run.id, JS.JOB_STATE_RUNNING, attempt=2)
        scheduler.clock.advance(seconds=1)  # past the progress coalescing: the full path
        await expect_error(
            report(scheduler, run.id, JS.JOB_STATE_RUNNING, attempt=1, targets_done=9),
            grpc.StatusCode.FAILED_PRECONDITION,
            "superseded by attempt 2",
        )
        legacy = await report(scheduler, run.id, JS.JOB_STATE_RUNNING, targets_done=3)  # attempt 0: an old collector
        assert (running.state, legacy.targets_done, legacy.attempt) == (JS.JOB_STATE_RUNNING, 3, 2)


async def test_renew_leases_renews_what_is_still_held_and_returns_the_rest_as_lost(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, zone="dmz")
        held, cancelled, elsewhere, queued = [await start_run(scheduler) for _ in range(4)]
        await claim(scheduler, "edge-7", limit=2)  # held and cancelled, the oldest two
        await claim(scheduler, "edge-8")  # elsewhere
        await scheduler.stub.CancelJobRun(scheduler_pb2.CancelJobRunRequest(id=cancelled.id))
        scheduler.clock.advance(seconds=30)

        response = await renew(
            scheduler,
            (held.id, "uid-edge-7"),
            (cancelled.id, "uid-edge-7"),
            (elsewhere.id, "uid-edge-7"),
            (queued.id, "uid-edge-7"),
            ("jr_unknown", "uid-edge-7"),
            (held.id, "uid-edge-7"),  # a repeat counts once
        )

        assert response.lease_seconds == 90
        assert [(x.job_run_id, x.collector_instance_uid, x.reason) for x in response.lost] == [
            (cancelled.id, "uid-edge-7", f"job run {cancelled.id} already finished (cancelled): cancelled by alice"),
            (elsewhere.id, "uid-edge-7", f"job run {elsewhere.id} is attempt 1 on collector 'edge-8' (uid-edge-8)"),
            (queued.id, "uid-edge-7", f"job run {queued.id} is queued"),
            ("jr_unknown", "uid-edge-7", "no job run with id 'jr_unknown'"),
        ]
        assert lease_of(await get_run(scheduler, held.id)) == START + timedelta(seconds=120)
        assert lease_of(await get_run(scheduler, elsewhere.id)) == START + LEASE  # not someone else's to renew
        assert (await get_run(scheduler, cancelled.id)).HasField("lease_expires_at") is False

        empty = await renew(scheduler)
        assert (list(empty.lost), empty.lease_seconds) == ([], 90)
        await expect_error(
            renew(scheduler, (held.id, "uid-edge-7"), gateway=""), grpc.StatusCode.INVALID_ARGUMENT, "gateway_id"
        )
        await expect_error(renew(scheduler, ("", "uid-edge-7")), grpc.StatusCode.INVALID_ARGUMENT, "job_run_id")


async def test_a_scheduler_that_starts_after_leases_expired_gives_holders_a_lease_to_renew(database_url: str) -> None:
    clock = FakeClock()
    async with running_scheduler(database_url, clock) as first:
        await create_discovery(first, zone="dmz")
        run = await start_run(first)
        await claim(first, "edge-7")

    clock.advance(minutes=10)  # no replica ran: nobody could renew
    async with running_scheduler(database_url, clock) as second:
        assert (await second.tick()).requeued == ()
        clock.advance(seconds=60)
        await renew(second, (run.id, "uid-edge-7"))  # the holder's next heartbeat
        clock.advance(seconds=30)
        assert (await second.tick()).requeued == ()
        clock.advance(seconds=60)  # and now nobody renews
        assert [r.id for r in (await second.tick()).requeued] == [run.id]


async def test_two_schedulers_requeue_an_expired_run_exactly_once(database_url: str) -> None:
    if not is_postgres(database_url):
        pytest.skip("several replicas share PostgreSQL; SQLite is one process per file")
    clock = FakeClock()
    async with running_scheduler(database_url, clock) as a, running_scheduler(database_url, clock) as b:
        await create_discovery(a, zone="dmz")
        runs = [await start_run(a) for _ in range(6)]
        for i in range(6):
            await claim(a if i % 2 else b, f"edge-{i}")
        clock.advance(seconds=90)
        before = await a.server.store.newest_revision()

        with capture_logs() as logs:
            reports = await all_read_before_any_writes(database_url, [a.tick, b.tick])

        requeued = [r.id for report_ in reports for r in report_.requeued]
        assert sorted(requeued) == sorted(r.id for r in runs)  # each once, between both replicas
        assert sorted(len(r.requeued) for r in reports) == [0, 6]  # both read all six; one wrote
        assert len([e for e in logs if e["event"] == "lease_expired"]) == 6
        assert await a.server.store.newest_revision() == before + 6  # one event per run
        stored = await list_runs(a, state=JS.JOB_STATE_QUEUED)
        assert {(r.id, r.attempt) for r in stored} == {(r.id, 1) for r in runs}


async def test_a_renewal_that_commits_while_a_sweep_waits_keeps_the_run(database_url: str) -> None:
    if not is_postgres(database_url):
        pytest.skip("needs a sweep that has read and waits for the event lock: PostgreSQL's advisory lock")
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, zone="dmz")
        run = await start_run(scheduler)
        await claim(scheduler, "edge-7")
        scheduler.clock.advance(seconds=90)

        async with holding_event_lock(database_url) as lock:
            sweep = asyncio.create_task(scheduler.tick())
            await lock.wait_for_waiters(1)  # the sweep has read the expired lease
            renewed = await renew(scheduler, (run.id, "uid-edge-7"))  # takes no event lock: commits now
        swept = await sweep

        assert (swept.requeued, list(renewed.lost)) == ((), [])
        stored = await get_run(scheduler, run.id)
        assert (stored.state, stored.attempt, lease_of(stored)) == (JS.JOB_STATE_DISPATCHED, 1, START + 2 * LEASE)
