"""What the scheduler's integration tests share (this module holds no tests).

`running_scheduler` starts the real gRPC server in-process on port 0 through
`services.scheduler.app.build_server` against the `database_url` fixture (SQLite and
PostgreSQL), with a `FakeClock` the test moves by hand, and hands back a stub on a real
channel. The tick loop is off unless a test asks for it (`tick_interval=...`); tests
then drive `server.ticker.tick()` themselves at the clock's current time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import grpc

from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.scheduler.app import SchedulerConfig, SchedulerServer, build_server
from services.scheduler.store.queries import EVENTS_LOCK_KEY
from tests.integration.test_registry_support import RunningRegistry, running_registry

JS = agent_pb2.JobState
WAIT_SECONDS = 10.0
START = datetime(2025, 6, 2, 9, 58, 30, tzinfo=UTC)
"""The fake clock's default start: a Monday, 90 s before 10:00 UTC."""


class FakeClock:
    """`now` as the test says; shared by every replica of a test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, now: datetime) -> datetime:
        self.now = now
        return now


@dataclass
class RunningScheduler:
    server: SchedulerServer
    port: int
    channel: grpc.aio.Channel
    stub: scheduler_pb2_grpc.SchedulerServiceStub
    clock: FakeClock
    registry: RunningRegistry | None = None
    """The registry beside it: register collectors there for the scheduler to find."""

    async def tick(self) -> Any:
        return await self.server.ticker.tick()

    async def refresh_waiting_reasons(self) -> int:
        assert self.server.waiting is not None
        return await self.server.waiting.refresh()


@asynccontextmanager
async def running_scheduler(
    database_url: str, clock: FakeClock | None = None, **overrides: Any
) -> AsyncIterator[RunningScheduler]:
    """The scheduler serving on 127.0.0.1:<free port>, stopped (and its engine disposed) after.

    A real registry runs beside it (on its own SQLite file, or its own schema), because the
    scheduler checks admin tokens there; `stub` calls admin RPCs as the admin "alice" and
    gateway RPCs with the gateway's identity, as real callers do.
    """
    clock = clock or FakeClock()
    async with running_registry(registry_url(database_url)) as registry:
        credentials = registry.credentials
        config = SchedulerConfig(
            database_url=database_url,
            listen="127.0.0.1:0",
            metrics_listen="",
            tick_interval=0,
            registry=f"127.0.0.1:{registry.port}",
            token_file=credentials.identity_files["scheduler"],
            peer_tokens={"gateway": credentials.identity_files["gateway"]},
        )
        server, port = await build_server(replace(config, **overrides), clock=clock)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=credentials.interceptors())
        try:
            yield RunningScheduler(
                server, port, channel, scheduler_pb2_grpc.SchedulerServiceStub(channel), clock, registry
            )
        finally:
            await channel.close()
            await server.stop(0)


def registry_url(database_url: str) -> str:
    """Where the registry beside a scheduler keeps its tables: its own SQLite file (two
    services' tables in one file would collide), or the same PostgreSQL database."""
    if database_url.startswith("sqlite"):
        return database_url.removesuffix(".db") + "-registry.db"
    return database_url


async def create_discovery(
    scheduler: RunningScheduler,
    name: str = "dmz-sweep",
    *,
    collector: str = "",
    zone: str = "",
    allow_unknown: bool = True,
    **fields: Any,
) -> scheduler_pb2.Discovery:
    """CreateDiscovery; by default for a collector or zone the registry beside it does not know
    (these tests play the gateway themselves), hence `allow_unknown`."""
    if not collector and not zone:
        zone = "dmz"
    message = scheduler_pb2.Discovery(
        name=name,
        targets=fields.pop("targets", ["10.0.0.0/24"]),
        ports=fields.pop("ports", [22]),
        collector=collector,
        zone=zone,
        **fields,
    )
    response = await scheduler.stub.CreateDiscovery(
        scheduler_pb2.CreateDiscoveryRequest(discovery=message, allow_unknown=allow_unknown)
    )
    created: scheduler_pb2.Discovery = response.discovery
    return created


async def create_schedule(
    scheduler: RunningScheduler,
    name: str = "every-minute",
    *,
    discovery: str = "dmz-sweep",
    minute: str = "*",
    hour: str = "*",
    timezone: str = "UTC",
    enabled: bool = True,
    policy: scheduler_pb2.MissedRunPolicy = scheduler_pb2.MISSED_RUN_POLICY_UNSPECIFIED,
    **fields: Any,
) -> scheduler_pb2.Schedule:
    message = scheduler_pb2.Schedule(
        name=name,
        discovery=discovery,
        minute=minute,
        hour=hour,
        day_of_month=fields.pop("day_of_month", "*"),
        month=fields.pop("month", "*"),
        day_of_week=fields.pop("day_of_week", "*"),
        timezone=timezone,
        enabled=enabled,
        missed_run_policy=policy,
    )
    response = await scheduler.stub.CreateSchedule(scheduler_pb2.CreateScheduleRequest(schedule=message))
    created: scheduler_pb2.Schedule = response.schedule
    return created


async def start_run(scheduler: RunningScheduler, discovery: str = "dmz-sweep") -> scheduler_pb2.JobRun:
    response = await scheduler.stub.StartDiscovery(scheduler_pb2.StartDiscoveryRequest(name=discovery))
    run: scheduler_pb2.JobRun = response.job_run
    return run


async def list_runs(scheduler: RunningScheduler, **filters: Any) -> list[scheduler_pb2.JobRun]:
    response = await scheduler.stub.ListJobRuns(scheduler_pb2.ListJobRunsRequest(**filters))
    return list(response.job_runs)


async def get_run(scheduler: RunningScheduler, run_id: str) -> scheduler_pb2.JobRun:
    response = await scheduler.stub.GetJobRun(scheduler_pb2.GetJobRunRequest(id=run_id))
    run: scheduler_pb2.JobRun = response.job_run
    return run


async def claim(
    scheduler: RunningScheduler,
    collector: str = "edge-7",
    *,
    zone: str = "dmz",
    uid: str | None = None,
    gateway: str = "gw-1",
    limit: int = 0,
) -> list[scheduler_pb2.JobRun]:
    response = await scheduler.stub.ClaimJobRuns(
        scheduler_pb2.ClaimJobRunsRequest(
            gateway_id=gateway,
            collector_instance_uid=uid or f"uid-{collector}",
            collector=collector,
            zone=zone,
            limit=limit,
        )
    )
    return list(response.job_runs)


async def report(
    scheduler: RunningScheduler,
    run_id: str,
    state: agent_pb2.JobState,
    *,
    collector: str = "edge-7",
    uid: str | None = None,
    **counters: Any,
) -> scheduler_pb2.JobRun:
    response = await scheduler.stub.ReportJobUpdate(
        scheduler_pb2.ReportJobUpdateRequest(
            gateway_id="gw-1",
            collector_instance_uid=uid or f"uid-{collector}",
            update=agent_pb2.JobUpdate(job_run_id=run_id, state=state, **counters),
        )
    )
    run: scheduler_pb2.JobRun = response.job_run
    return run


async def renew(
    scheduler: RunningScheduler, *holds: tuple[str, str], gateway: str = "gw-1"
) -> scheduler_pb2.RenewLeasesResponse:
    """RenewLeases for (job_run_id, collector_instance_uid) pairs."""
    request = scheduler_pb2.RenewLeasesRequest(
        gateway_id=gateway,
        holds=[scheduler_pb2.LeaseHold(job_run_id=run_id, collector_instance_uid=uid) for run_id, uid in holds],
    )
    response: scheduler_pb2.RenewLeasesResponse = await scheduler.stub.RenewLeases(request)
    return response


def lease_of(run: scheduler_pb2.JobRun) -> datetime | None:
    return run.lease_expires_at.ToDatetime(tzinfo=UTC) if run.HasField("lease_expires_at") else None


class Watch:
    """One WatchDispatch stream; every read has a deadline."""

    def __init__(self, scheduler: RunningScheduler, since_revision: int = 0) -> None:
        self.call = scheduler.stub.WatchDispatch(scheduler_pb2.WatchDispatchRequest(since_revision=since_revision))

    async def next(self, timeout: float = WAIT_SECONDS) -> scheduler_pb2.DispatchEvent:
        async with asyncio.timeout(timeout):
            event = await self.call.read()
        assert event is not grpc.aio.EOF, "watch ended"
        return event

    async def next_change(self, timeout: float = WAIT_SECONDS) -> scheduler_pb2.DispatchEvent:
        """The next event that is not a bookmark."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next()
                if event.WhichOneof("body") != "bookmark":
                    return event

    def cancel(self) -> None:
        self.call.cancel()


@asynccontextmanager
async def watching(scheduler: RunningScheduler, since_revision: int = 0) -> AsyncIterator[Watch]:
    watch = Watch(scheduler, since_revision)
    try:
        yield watch
    finally:
        watch.cancel()


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = WAIT_SECONDS, what: str = "") -> None:
    """Wait until `check()` is true, re-checking briefly; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.02)


class EventLock:
    """The scheduler's event lock, held by a test on its own PostgreSQL connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def wait_for_waiters(self, count: int) -> None:
        """Until `count` transactions wait for the lock (each has done its reads by then)."""

        async def waiting() -> bool:
            # Only this database's waiters for this key: other tests running beside this
            # one (other databases on the same server) wait for advisory locks of their own.
            found = await self._conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1",
                EVENTS_LOCK_KEY & 0xFFFF_FFFF_FFFF_FFFF,
            )
            return bool(found == count)

        await eventually(waiting, what=f"{count} transactions to wait for the event lock")


@asynccontextmanager
async def holding_event_lock(database_url: str) -> AsyncIterator[EventLock]:
    """PostgreSQL only: the event writers of every replica wait until the block ends."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", EVENTS_LOCK_KEY)
        try:
            yield EventLock(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", EVENTS_LOCK_KEY)
    finally:
        await conn.close()


async def all_read_before_any_writes(database_url: str, steps: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run `steps` (e.g. one tick per replica) holding the event lock until each of them waits for it.

    PostgreSQL only. Every step has then done its reads before any of them writes, so they
    really race for the same rows instead of running one after the other.
    """
    async with holding_event_lock(database_url) as lock:
        racing = asyncio.gather(*(step() for step in steps))
        await lock.wait_for_waiters(len(steps))
    return list(await racing)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")
