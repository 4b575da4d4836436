"""Validate at create, once: limits the collector enforces, where a discovery runs, and why runs wait.

The scheduler runs beside a real registry (SQLite and PostgreSQL); collectors are
announced and registered there as an admin would, and the scheduler asks it.
"""

from __future__ import annotations

from datetime import UTC

import grpc
import pytest

from outpost.registry.v1 import registry_pb2
from outpost.scheduler.v1 import scheduler_pb2
from tests.integration.test_registry_support import announce, register
from tests.integration.test_scheduler_admin import expect_error
from tests.integration.test_scheduler_support import (
    JS,
    FakeClock,
    RunningScheduler,
    claim,
    create_discovery,
    create_schedule,
    get_run,
    list_runs,
    running_scheduler,
    start_run,
    utc,
)


async def registered(scheduler: RunningScheduler, name: str, zone: str, *, enable: bool = True) -> None:
    """Announced, registered, and gone: its gateway reports no session for it any more."""
    assert scheduler.registry is not None
    await announce(scheduler.registry, name, zone=zone)
    await register(scheduler.registry, name, enable=enable)
    await scheduler.registry.stub.ReportSessions(
        registry_pb2.ReportSessionsRequest(gateway_id="gw-1", sessions=[], complete=True)
    )


async def test_targets_past_the_collectors_limit_are_refused_at_create_with_the_count(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        details = await expect_error(
            create_discovery(scheduler, "loopback", targets=["127.0.0.0/8"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "the targets expand to 16,777,216 addresses; a discovery scans at most 1,048,576",
        )
        assert "discovery 'loopback'" in details
        await expect_error(
            create_discovery(scheduler, "no-ports", ports=[]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "the tcp probe needs at least one port",
        )
        await expect_error(
            create_discovery(scheduler, "bits", targets=["10.0.0.7/24"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "has host bits set: did you mean 10.0.0.0/24?",
        )
        # Exactly the limit is fine, and what the collector would scan is stored canonical.
        created = await create_discovery(
            scheduler, "big", targets=["10.0.0.0/12", "::ffff:10.0.50.1", "10.0.0.5-20"], probes=["icmp"], ports=[]
        )
        assert list(created.targets) == ["10.0.0.0/12", "10.0.50.1", "10.0.0.5-10.0.0.20"]


async def test_a_huge_name_gets_the_naming_rule_never_a_transport_error(database_url: str) -> None:
    huge = "n" * 10_000
    async with running_scheduler(database_url) as scheduler:
        details = await expect_error(
            create_discovery(scheduler, huge), grpc.StatusCode.INVALID_ARGUMENT, "at most 128 characters"
        )
        assert "(10,000 characters)" in details and len(details) < 400
        for call in (
            scheduler.stub.GetDiscovery(scheduler_pb2.GetDiscoveryRequest(name=huge)),
            scheduler.stub.DeleteSchedule(scheduler_pb2.DeleteScheduleRequest(name=huge)),
        ):
            assert len(await expect_error(call, grpc.StatusCode.INVALID_ARGUMENT, "at most 128")) < 400
        details = await expect_error(
            scheduler.stub.GetJobRun(scheduler_pb2.GetJobRunRequest(id=huge)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "longer than 256 characters",
        )
        assert scheduler.registry is not None
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await scheduler.registry.stub.GetCollector(registry_pb2.GetCollectorRequest(name=huge))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "longer than 256 characters" in (info.value.details() or "")


async def test_an_unknown_collector_or_zone_is_refused_unless_allowed(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await registered(scheduler, "edge-7", "lab")
        await announce(scheduler.registry, "edge-pending", zone="pending-only")  # type: ignore[arg-type]

        await expect_error(
            create_discovery(scheduler, "typo", collector="egde-7", allow_unknown=False),
            grpc.StatusCode.NOT_FOUND,
            "discovery 'typo' not created: no collector named 'egde-7' is registered",
        )
        await expect_error(
            create_discovery(scheduler, "typo", zone="labb", allow_unknown=False),
            grpc.StatusCode.NOT_FOUND,
            "no registered collector is in zone 'labb'",
        )
        await expect_error(
            create_discovery(scheduler, "typo", zone="pending-only", allow_unknown=False),
            grpc.StatusCode.NOT_FOUND,
            "pass --allow-unknown",
        )
        await create_discovery(scheduler, "by-name", collector="edge-7", allow_unknown=False)
        await create_discovery(scheduler, "by-zone", zone="lab", allow_unknown=False)
        await create_discovery(scheduler, "pending", collector="edge-pending", allow_unknown=False)
        await create_discovery(scheduler, "later", collector="edge-99", allow_unknown=True)
        listed = await scheduler.stub.ListDiscoveries(scheduler_pb2.ListDiscoveriesRequest())
        assert [d.name for d in listed.discoveries] == ["by-name", "by-zone", "later", "pending"]


async def test_queued_runs_say_why_they_wait(database_url: str) -> None:
    async with running_scheduler(database_url) as scheduler:
        await registered(scheduler, "edge-7", "lab")  # enabled, but no gateway holds it now: offline
        await registered(scheduler, "edge-8", "cold", enable=False)
        await announce(scheduler.registry, "edge-new", zone="pending-zone")  # type: ignore[arg-type]
        for name, where in (
            ("nosuch", {"collector": "nosuch"}),
            ("offline", {"collector": "edge-7"}),
            ("disabled", {"collector": "edge-8"}),
            ("pending", {"collector": "edge-new"}),
            ("zone-offline", {"zone": "lab"}),
            ("zone-disabled", {"zone": "cold"}),
            ("zone-empty", {"zone": "nowhere"}),
        ):
            await create_discovery(scheduler, name, **where)
        runs = {name: (await start_run(scheduler, name)).id for name in ("nosuch", "offline", "disabled")}
        for name in ("pending", "zone-offline", "zone-disabled", "zone-empty"):
            runs[name] = (await start_run(scheduler, name)).id
        assert (await get_run(scheduler, runs["nosuch"])).waiting_reason == ""  # not checked yet

        changed = await scheduler.refresh_waiting_reasons()
        reasons = {name: (await get_run(scheduler, run_id)).waiting_reason for name, run_id in runs.items()}
        assert changed == len(runs)

        assert reasons["nosuch"] == "no collector named 'nosuch' is registered"
        assert reasons["offline"].startswith("collector 'edge-7' is offline (last heard ")
        assert reasons["disabled"] == "collector 'edge-8' is disabled"
        assert reasons["pending"] == "collector 'edge-new' is pending: `outpostctl collectors register edge-new`"
        assert reasons["zone-offline"].startswith("no collector of zone 'lab' is online (last heard ")
        assert reasons["zone-disabled"] == "no enabled collector in zone 'cold' (edge-8 disabled)"
        assert reasons["zone-empty"] == "no registered collector is in zone 'nowhere'"
        listed = {r.id: r.waiting_reason for r in await list_runs(scheduler)}
        assert listed[runs["nosuch"]] == reasons["nosuch"]
        assert await scheduler.refresh_waiting_reasons() == 0  # nothing changed: nothing written

        [taken] = await claim(scheduler, "edge-7", zone="lab", limit=1)
        assert taken.waiting_reason == ""  # only a queued run waits


async def test_a_run_missed_while_its_collector_was_disabled_says_so(database_url: str) -> None:
    clock = FakeClock(utc(2025, 6, 2, 9, 59, 30))
    async with running_scheduler(database_url, clock) as scheduler:
        await registered(scheduler, "edge-8", "lab", enable=False)
        await create_discovery(scheduler, "core", collector="edge-8", allow_unknown=False)
        await create_schedule(scheduler, "every-minute", discovery="core", policy=scheduler_pb2.MISSED_RUN_POLICY_SKIP)
        clock.set(utc(2025, 6, 2, 10, 0, 1))
        [run] = (await scheduler.tick()).created
        await scheduler.refresh_waiting_reasons()

        clock.set(utc(2025, 6, 2, 10, 7, 0))  # past the missed threshold (5 min poll + 1 min)
        assert scheduler.registry is not None
        await scheduler.registry.stub.EnableCollector(registry_pb2.EnableCollectorRequest(name="edge-8"))
        assert await claim(scheduler, "edge-8", zone="lab") == []

        missed = await get_run(scheduler, run.id)
        assert (missed.state, missed.reason) == (
            JS.JOB_STATE_CANCELLED,
            "missed: collector was disabled when it fell due",
        )


async def test_an_every_minute_skip_schedule_for_an_unknown_collector_holds_one_waiting_run(database_url: str) -> None:
    """Five minutes on the injected clock: at most one run waits, and it says why."""
    clock = FakeClock(utc(2025, 6, 2, 9, 59, 30))
    async with running_scheduler(database_url, clock) as scheduler:
        await create_discovery(scheduler, "typo", collector="nosuch", allow_unknown=True)
        await create_schedule(scheduler, "every-minute", discovery="typo", policy=scheduler_pb2.MISSED_RUN_POLICY_SKIP)
        for minute in range(6):
            clock.set(utc(2025, 6, 2, 10, minute, 1))
            await scheduler.tick()
            await scheduler.refresh_waiting_reasons()
            waiting = [r for r in await list_runs(scheduler) if r.state == JS.JOB_STATE_QUEUED]
            assert len(waiting) == 1

        [last] = waiting
        assert last.due_at.ToDatetime(tzinfo=UTC) == utc(2025, 6, 2, 10, 5)
        assert last.waiting_reason == "no collector named 'nosuch' is registered"
        cancelled = [r for r in await list_runs(scheduler) if r.state == JS.JOB_STATE_CANCELLED]
        assert len(cancelled) == 5
        assert all(r.reason.endswith("it waited because no collector named 'nosuch' is registered") for r in cancelled)
