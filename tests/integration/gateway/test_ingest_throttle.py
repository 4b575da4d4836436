"""The gateway's ingest against a PostgreSQL that fails: throttled, not acked, then acked, stored once.

The real path a session runs: `SessionWork.result_batch` -> `IngestGate` -> `BatchIngest`
-> `commit_batch` on the test's own PostgreSQL database, with the collector played by a
`CollectorSession` core linked in memory (so what the collector hears is asserted). The
scheduler is a fake that knows the one run. The gate's clock is injected, so cool-downs
pass when the test says, without sleeping.

Failures are made on the test's database only: its gateway connections are found by
`application_name` and database name and killed with `pg_terminate_backend`; new ones are
refused with `ALTER DATABASE ... ALLOW_CONNECTIONS false`; a commit is held mid-transaction
by holding the zone's advisory lock (the lock every commit of the zone takes, ADR 0007)
from a connection of the test's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2
from outpost.session.collector import BatchAcked, Throttled
from outpost.session.server import AuthenticationRequested, ResultBatchReceived, ServerState
from services.gateway.inventory.ingest import BatchIngest
from services.gateway.inventory.ingest_gate import IngestGate
from services.gateway.inventory.store.commit import ZONE_LOCK_NAMESPACE, zone_lock_key
from services.gateway.inventory.store.database import open_inventory
from services.gateway.inventory.store.queries import InventoryStore
from services.gateway.sessions.work import SessionWork, WorkContext
from tests.conftest import POSTGRES_DSN
from tests.unit.test_session_pair import Pair, connect, registry_decides

pytestmark = pytest.mark.postgres

UID = "c0ffee00-0000-4000-8000-00000000000a"
ZONE = "lab"
GATEWAY_APPLICATION = "outpost-gateway"
RUN = scheduler_pb2.JobRun(
    id="jr_1",
    collector_instance_uid=UID,
    attempt=1,
    discovery_snapshot=scheduler_pb2.Discovery(name="lab", ports=[22]),
)
UNAVAILABLE = "inventory database unavailable; results stay in the spool"
COOLING_DOWN = "inventory database unavailable; cooling down"


def batch(sequence: int, *ips: str, attempt: int = 1) -> agent_pb2.ResultBatch:
    return agent_pb2.ResultBatch(
        job_run_id="jr_1",
        sequence=sequence,
        attempt=attempt,
        observed_at_unix_ms=1_767_225_600_000,
        devices=[
            agent_pb2.DeviceObservation(ip=ip, ports=[agent_pb2.PortObservation(port=22, protocol="tcp")]) for ip in ips
        ],
    )


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


class OneRunScheduler:
    async def get_run(self, job_run_id: str) -> scheduler_pb2.JobRun:
        return RUN


@dataclass
class Ingest:
    pair: Pair
    work: SessionWork
    gate: IngestGate
    clock: Clock
    store: InventoryStore
    database: str

    async def send(self, *batches: agent_pb2.ResultBatch) -> list[object]:
        """The collector sends `batches`; the gateway handles each to the end; what it hears back."""
        for sent in batches:
            assert self.pair.collector.send_result_batch(sent)
        self.pair.pump(0.0)
        for event in self.pair.take_events()[1]:
            assert isinstance(event, ResultBatchReceived)
            await self.work.result_batch(self.pair.server, event.batch)
        self.pair.pump(0.0)
        return list(self.pair.take_events()[0])

    async def counts(self) -> dict[str, int]:
        async with self.store.read() as conn:
            return {
                table: int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())
                for table in ("devices", "device_changes", "ingested_batches")
            }


@asynccontextmanager
async def ingest(database_url: str, *, commit_timeout: float = 10.0) -> AsyncIterator[Ingest]:
    if not database_url.startswith("postgresql"):
        pytest.skip("kills PostgreSQL connections; SQLite has none to kill")
    store = await open_inventory(database_url)
    clock = Clock()
    gate = IngestGate(commit_timeout=commit_timeout, clock=clock, jitter=lambda: 0.0)
    work = SessionWork(
        WorkContext("gw-1", OneRunScheduler(), None, BatchIngest(store), gate),  # type: ignore[arg-type]
        UID,
        "edge-1",
        ZONE,
        deliver=lambda item: None,
    )
    pair = connect()
    [request] = pair.take_events()[1]
    assert isinstance(request, AuthenticationRequested)
    pair.server.authenticated(registry_decides(request, ServerState.ENABLED), 0.0)
    pair.pump(0.0)
    pair.take_events()
    try:
        yield Ingest(pair, work, gate, clock, store, str(make_url(database_url).database))
    finally:
        await gate.close(timeout=10)
        await store.close()
        await _admin(f'ALTER DATABASE "{make_url(database_url).database}" ALLOW_CONNECTIONS true')


async def _admin(statement: str, *args: object) -> list[asyncpg.Record]:
    """Run `statement` on the server's maintenance database (never on the test's own)."""
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


async def kill_gateway_connections(database: str) -> int:
    rows = await _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
        database,
        GATEWAY_APPLICATION,
    )
    return len(rows)


async def gateway_waits_on_a_lock(database: str) -> None:
    async with asyncio.timeout(10):
        while not await _admin(
            "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock'",
            database,
            GATEWAY_APPLICATION,
        ):
            await asyncio.sleep(0.02)


@asynccontextmanager
async def zone_locked(database_url: str) -> AsyncIterator[None]:
    """Hold the zone's write lock from a connection of the test's own: commits of the zone wait."""
    conn = await asyncpg.connect(POSTGRES_DSN.rsplit("/", 1)[0] + "/" + str(make_url(database_url).database))
    try:
        await conn.execute("SELECT pg_advisory_lock($1, $2)", ZONE_LOCK_NAMESPACE, zone_lock_key(ZONE))
        yield
    finally:
        await conn.close()  # ends the session, and its lock


async def test_killed_connections_throttle_batches_unacked_until_the_database_is_back_then_each_is_stored_once(
    database_url: str,
) -> None:
    async with ingest(database_url) as gateway:
        assert await gateway.send(batch(1, "10.0.0.1", "10.0.0.2")) == [BatchAcked("jr_1", 1, 1)]

        # Batch 2's commit is mid-transaction (waiting for the zone lock) when the database
        # stops taking connections and kills the gateway's.
        async with zone_locked(database_url):
            assert gateway.pair.collector.send_result_batch(batch(2, "10.0.0.2", "10.0.0.3"))
            gateway.pair.pump(0.0)
            [received] = gateway.pair.take_events()[1]
            assert isinstance(received, ResultBatchReceived)
            in_flight = asyncio.create_task(gateway.work.result_batch(gateway.pair.server, received.batch))
            await gateway_waits_on_a_lock(gateway.database)
            await _admin(f'ALTER DATABASE "{gateway.database}" ALLOW_CONNECTIONS false')
            assert await kill_gateway_connections(gateway.database) >= 1
            await asyncio.wait_for(in_flight, 10)
        gateway.pair.pump(0.0)
        assert gateway.pair.take_events()[0] == [Throttled(1.0, UNAVAILABLE)]  # not acked

        # During the cool-down nothing reaches the database; batch 3 is throttled too.
        gateway.clock.now += 0.5
        assert await gateway.send(batch(3, "10.0.0.4")) == [Throttled(0.5, COOLING_DOWN)]

        # After it the collector resends; the database still refuses: the cool-down doubles.
        gateway.clock.now += 0.5
        assert await gateway.send(batch(2, "10.0.0.2", "10.0.0.3")) == [Throttled(2.0, UNAVAILABLE)]
        gateway.clock.now += 1.0
        assert await gateway.send(batch(3, "10.0.0.4")) == [Throttled(1.0, COOLING_DOWN)]

        # The database is back: everything unacked is resent and acked; a lost ack's
        # resend of batch 1 is acked again and changes nothing.
        await _admin(f'ALTER DATABASE "{gateway.database}" ALLOW_CONNECTIONS true')
        gateway.clock.now += 1.0
        assert await gateway.send(batch(2, "10.0.0.2", "10.0.0.3"), batch(3, "10.0.0.4"), batch(1, "10.0.0.1")) == [
            BatchAcked("jr_1", 2, 1),
            BatchAcked("jr_1", 3, 1),
            BatchAcked("jr_1", 1, 1),
        ]
        assert gateway.gate.breaker.cool_down == 0.0
        assert await gateway.counts() == {"devices": 4, "device_changes": 4, "ingested_batches": 3}


async def test_a_hung_database_turns_into_a_timeout_and_a_throttle_and_the_resend_is_stored_once(
    database_url: str,
) -> None:
    async with ingest(database_url, commit_timeout=0.5) as gateway:
        async with zone_locked(database_url):
            assert await gateway.send(batch(1, "10.0.0.1")) == [Throttled(1.0, UNAVAILABLE)]
            assert gateway.gate.in_flight == 0

        gateway.clock.now += 1.0
        assert await gateway.send(batch(1, "10.0.0.1")) == [BatchAcked("jr_1", 1, 1)]
        assert await gateway.send(batch(2, "10.0.0.2")) == [BatchAcked("jr_1", 2, 1)]
        assert await gateway.counts() == {"devices": 2, "device_changes": 2, "ingested_batches": 2}


async def test_a_batch_killed_mid_commit_leaves_nothing_behind_and_its_resend_commits_it_whole(
    database_url: str,
) -> None:
    async with ingest(database_url) as gateway:
        async with zone_locked(database_url):
            assert gateway.pair.collector.send_result_batch(batch(1, "10.0.0.1", "10.0.0.2"))
            gateway.pair.pump(0.0)
            [received] = gateway.pair.take_events()[1]
            assert isinstance(received, ResultBatchReceived)
            in_flight = asyncio.create_task(gateway.work.result_batch(gateway.pair.server, received.batch))
            await gateway_waits_on_a_lock(gateway.database)
            await kill_gateway_connections(gateway.database)  # the identity row was written: it is rolled back
            await asyncio.wait_for(in_flight, 10)
        gateway.pair.pump(0.0)
        assert gateway.pair.take_events()[0] == [Throttled(1.0, UNAVAILABLE)]
        assert await gateway.counts() == {"devices": 0, "device_changes": 0, "ingested_batches": 0}

        gateway.clock.now += 1.0  # the pool reconnects by itself
        assert await gateway.send(batch(1, "10.0.0.1", "10.0.0.2")) == [BatchAcked("jr_1", 1, 1)]
        assert await gateway.counts() == {"devices": 2, "device_changes": 2, "ingested_batches": 1}
