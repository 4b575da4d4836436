"""Admin calls: discoveries, schedules, manual runs, listing and settings, with their errors."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from outpost.scheduler.v1 import scheduler_pb2
from tests.integration.test_scheduler_support import (
    JS,
    claim,
    create_discovery,
    create_schedule,
    get_run,
    list_runs,
    running_scheduler,
    start_run,
)


async def expect_error(call: object, code: grpc.StatusCode, text: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    details = info.value.details() or ""
    assert text in details, details
    return details


async def test_discoveries_are_validated_created_with_defaults_listed_and_deleted(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        created = await create_discovery(
            scheduler,
            "dmz-sweep",
            zone="dmz",
            ports=[443, 22],
            probes=["tcp", "snmp", "ssh"],
            snmp_credential="ro",
            snmp_port=1161,
            ssh_port=2222,
        )
        await create_discovery(scheduler, "core", collector="edge-7", targets=["10.1.0.1-10.1.0.9"])

        assert (created.concurrency, created.timeout_ms, created.deadline_seconds, created.rate_per_second) == (
            256,
            1000,
            3600,
            0,
        )
        assert list(created.ports) == [22, 443]
        assert created.created_at.ToDatetime(tzinfo=UTC) == scheduler.clock.now
        listed = await scheduler.stub.ListDiscoveries(scheduler_pb2.ListDiscoveriesRequest())
        assert [d.name for d in listed.discoveries] == ["core", "dmz-sweep"]
        shown = await scheduler.stub.GetDiscovery(scheduler_pb2.GetDiscoveryRequest(name="dmz-sweep"))
        assert shown.discovery == created
        assert (shown.discovery.snmp_port, shown.discovery.ssh_port) == (1161, 2222)
        standard = next(d for d in listed.discoveries if d.name == "core")
        assert (standard.snmp_port, standard.ssh_port) == (0, 0)  # 0 = the standard 161 and 22

        started = await start_run(scheduler, "dmz-sweep")  # the run carries the ports in its snapshot
        snapshot = (await get_run(scheduler, started.id)).discovery_snapshot
        assert (started.discovery_snapshot.snmp_port, started.discovery_snapshot.ssh_port) == (1161, 2222)
        assert (snapshot.snmp_port, snapshot.ssh_port) == (1161, 2222)
        assert snapshot == created

        queued = await start_run(scheduler, "core")
        await scheduler.stub.DeleteDiscovery(scheduler_pb2.DeleteDiscoveryRequest(name="core"))
        after = await get_run(scheduler, queued.id)  # its queued run would surprise someone later
        assert (after.state, after.reason) == (JS.JOB_STATE_CANCELLED, "discovery 'core' was deleted")
        await expect_error(
            scheduler.stub.GetDiscovery(scheduler_pb2.GetDiscoveryRequest(name="core")),
            grpc.StatusCode.NOT_FOUND,
            "no discovery named 'core'; `outpostctl discoveries list` shows them",
        )

        both = scheduler_pb2.Discovery(name="x", targets=["10.0.0.0/24"], collector="edge-7", zone="dmz")
        await expect_error(
            scheduler.stub.CreateDiscovery(scheduler_pb2.CreateDiscoveryRequest(discovery=both)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "must name exactly one of collector or zone",
        )
        bad_target = scheduler_pb2.Discovery(name="x", targets=["10.0.0.0/99"], zone="dmz")
        await expect_error(
            scheduler.stub.CreateDiscovery(scheduler_pb2.CreateDiscoveryRequest(discovery=bad_target)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "target '10.0.0.0/99'",
        )
        await expect_error(
            create_discovery(scheduler, "x", ssh_port=65_536),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ssh_port must be between 1 and 65535 (0 for the standard port), got 65536",
        )
        await expect_error(create_discovery(scheduler, "dmz-sweep"), grpc.StatusCode.ALREADY_EXISTS, "already exists")


async def test_schedules_are_validated_with_croniter_and_the_zone_database(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler)
        await expect_error(
            create_schedule(scheduler, minute="61"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid cron expression '61 * * * *': [61 * * * *] is not acceptable, out of range",
        )
        await expect_error(
            create_schedule(scheduler, timezone="Europe/Atlantis"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown time zone 'Europe/Atlantis'",
        )
        await expect_error(
            create_schedule(scheduler, discovery="nope"), grpc.StatusCode.NOT_FOUND, "no discovery named 'nope'"
        )

        created = await create_schedule(scheduler, "nightly", minute="30", hour="2", timezone="Europe/Berlin")
        assert created.missed_run_policy == scheduler_pb2.MISSED_RUN_POLICY_RUN_ONCE
        assert created.next_due_at.ToDatetime(tzinfo=UTC) == datetime(2025, 6, 3, 0, 30, tzinfo=UTC)
        assert not created.HasField("last_due_at")
        await expect_error(create_schedule(scheduler, "nightly"), grpc.StatusCode.ALREADY_EXISTS, "already exists")

        disabled = await scheduler.stub.SetScheduleEnabled(
            scheduler_pb2.SetScheduleEnabledRequest(name="nightly", enabled=False)
        )
        assert not disabled.schedule.enabled and not disabled.schedule.HasField("next_due_at")
        listed = await scheduler.stub.ListSchedules(scheduler_pb2.ListSchedulesRequest())
        assert [(s.name, s.enabled) for s in listed.schedules] == [("nightly", False)]

        await expect_error(
            scheduler.stub.DeleteDiscovery(scheduler_pb2.DeleteDiscoveryRequest(name="dmz-sweep")),
            grpc.StatusCode.FAILED_PRECONDITION,
            "used by schedule(s) nightly; delete those first",
        )
        await scheduler.stub.DeleteSchedule(scheduler_pb2.DeleteScheduleRequest(name="nightly"))
        await expect_error(
            scheduler.stub.DeleteSchedule(scheduler_pb2.DeleteScheduleRequest(name="nightly")),
            grpc.StatusCode.NOT_FOUND,
            "no schedule named 'nightly'",
        )
        await scheduler.stub.DeleteDiscovery(scheduler_pb2.DeleteDiscoveryRequest(name="dmz-sweep"))


async def test_a_manual_run_is_queued_now_with_a_snapshot_and_runs_list_newest_first(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await create_discovery(scheduler, "core", collector="edge-7", ports=[22])
        run = await start_run(scheduler, "core")

        assert run.id.startswith("jr_") and len(run.id) == 29
        assert (run.state, run.trigger, run.schedule, run.target_collector, run.target_zone) == (
            JS.JOB_STATE_QUEUED,
            "manual",
            "",
            "edge-7",
            "",
        )
        assert run.due_at.ToDatetime(tzinfo=UTC) == scheduler.clock.now
        assert run.reason == "started by alice"
        assert list(run.discovery_snapshot.ports) == [22] and run.discovery_snapshot.name == "core"
        assert await get_run(scheduler, run.id) == run
        await expect_error(start_run(scheduler, "nope"), grpc.StatusCode.NOT_FOUND, "no discovery named 'nope'")
        await expect_error(get_run(scheduler, "jr_missing"), grpc.StatusCode.NOT_FOUND, "no job run with id")

        await create_discovery(scheduler, "a", zone="dmz")
        await create_discovery(scheduler, "b", collector="edge-9")
        await scheduler.stub.CancelJobRun(scheduler_pb2.CancelJobRunRequest(id=run.id))
        scheduler.clock.advance(seconds=1)
        ids = []
        for name in ("a", "b", "a", "b", "a"):
            ids.append((await start_run(scheduler, name)).id)
            scheduler.clock.advance(seconds=1)
        taken = await claim(scheduler, "edge-7", zone="dmz")

        assert [r.id for r in await list_runs(scheduler)] == [*ids[::-1], run.id]
        assert [r.id for r in await list_runs(scheduler, discovery="a")] == [ids[4], ids[2], ids[0]]
        first = await scheduler.stub.ListJobRuns(scheduler_pb2.ListJobRunsRequest(page_size=2))
        assert [r.id for r in first.job_runs] == [ids[4], ids[3]] and first.next_page_token
        # A client from before pages sent `limit`: the same first page, and the token.
        old = await scheduler.stub.ListJobRuns(scheduler_pb2.ListJobRunsRequest(limit=2))
        assert (list(old.job_runs), old.next_page_token) == (list(first.job_runs), first.next_page_token)
        # By collector: the runs it took, and those aimed at it by name.
        assert [r.id for r in await list_runs(scheduler, collector="edge-7")] == [taken[0].id, run.id]
        assert [r.id for r in await list_runs(scheduler, collector="edge-9")] == [ids[3], ids[1]]
        dispatched = await list_runs(scheduler, state=JS.JOB_STATE_DISPATCHED)
        assert [r.id for r in dispatched] == [ids[0]]
