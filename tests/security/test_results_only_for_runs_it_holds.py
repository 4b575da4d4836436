"""Results are accepted only for runs the collector holds, and dated by the server's clock.

The gateway's ingest path as a session drives it (`SessionWork.result_batch`), with the
real inventory on SQLite and PostgreSQL behind it and a scheduler stand-in that answers
`GetJobRun`. A batch naming a run of another collector or zone is refused (acked as
rejected, so the collector forgets it) and changes nothing; an `observed_at` in year
9999 is clamped to the server's time (within the allowed skew), so a sighting cannot
pin itself as the newest forever.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2
from outpost.session.collector import BatchAcked
from outpost.session.server import ServerState
from services.gateway.inventory.ingest_gate import IngestGate
from services.gateway.sessions.work import SessionWork, WorkContext
from tests.integration.test_inventory_support import RunningInventory, running_inventory
from tests.unit.test_session_work import accepted_pair, send

OURS = "uid-edge-a"
THEIRS = "uid-edge-b"
DISCOVERY = scheduler_pb2.Discovery(name="prod-scan", targets=["10.9.0.0/29"], ports=[22])
YEAR_9999_MS = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)
EMPTY = {"devices": 0, "device_ports": 0, "device_changes": 0, "ingested_batches": 0}


class RunsOf:
    """The scheduler's GetJobRun for one run; claims return nothing (the run is not ours)."""

    def __init__(self, run: scheduler_pb2.JobRun) -> None:
        self.run = run

    async def get_run(self, job_run_id: str) -> scheduler_pb2.JobRun:
        return self.run

    async def claim(self, **_: object) -> list[scheduler_pb2.JobRun]:
        return []


def edge_a_in_lab(inventory: RunningInventory, run: scheduler_pb2.JobRun) -> SessionWork:
    gate = IngestGate(jitter=lambda: 0.0)
    ctx = WorkContext("gw-1", RunsOf(run), None, inventory.ingest, gate)  # type: ignore[arg-type]
    return SessionWork(ctx, OURS, "edge-a", "lab", deliver=lambda item: None)


def batch(run_id: str, *, attempt: int = 1, observed_at_ms: int = 0) -> agent_pb2.ResultBatch:
    return agent_pb2.ResultBatch(
        job_run_id=run_id,
        sequence=1,
        attempt=attempt,
        observed_at_unix_ms=observed_at_ms,
        devices=[agent_pb2.DeviceObservation(ip="10.9.0.1")],
    )


async def test_batch_for_a_run_of_another_zone_is_refused_and_changes_nothing(database_url: str) -> None:
    run = scheduler_pb2.JobRun(
        id="jr_prod", target_zone="prod", collector_instance_uid=THEIRS, attempt=2, discovery_snapshot=DISCOVERY
    )
    async with running_inventory(database_url) as inventory:
        pair, work = accepted_pair(ServerState.ENABLED), edge_a_in_lab(inventory, run)

        # An "earlier attempt" of a run that was never this zone's: not an old lease's leftovers.
        heard = await send(pair, work, batch("jr_prod", attempt=1))

        assert heard == [BatchAcked("jr_prod", 1, 1)]  # acked as rejected: it is never resent
        assert await inventory.row_counts() == EMPTY


async def test_batch_for_a_queued_run_meant_for_another_collector_is_refused_and_changes_nothing(
    database_url: str,
) -> None:
    run = scheduler_pb2.JobRun(id="jr_b", target_collector="edge-b", attempt=0, discovery_snapshot=DISCOVERY)
    async with running_inventory(database_url) as inventory:
        pair, work = accepted_pair(ServerState.ENABLED), edge_a_in_lab(inventory, run)

        assert await send(pair, work, batch("jr_b", attempt=1)) == [BatchAcked("jr_b", 1, 1)]
        assert await send(pair, work, batch("jr_b", attempt=0)) == [BatchAcked("jr_b", 1, 0)]

        assert await inventory.row_counts() == EMPTY


async def test_batch_for_the_attempt_another_collector_of_its_zone_holds_is_refused(database_url: str) -> None:
    run = scheduler_pb2.JobRun(
        id="jr_lab", target_zone="lab", collector_instance_uid=THEIRS, attempt=3, discovery_snapshot=DISCOVERY
    )
    async with running_inventory(database_url) as inventory:
        pair, work = accepted_pair(ServerState.ENABLED), edge_a_in_lab(inventory, run)

        await send(pair, work, batch("jr_lab", attempt=3))
        await send(pair, work, batch("jr_lab", attempt=4))  # an attempt never handed out

        assert await inventory.row_counts() == EMPTY


async def test_observed_at_in_year_9999_is_clamped_to_the_servers_time(database_url: str) -> None:
    run = scheduler_pb2.JobRun(
        id="jr_lab", target_zone="lab", collector_instance_uid=OURS, attempt=1, discovery_snapshot=DISCOVERY
    )
    async with running_inventory(database_url) as inventory:
        pair, work = accepted_pair(ServerState.ENABLED), edge_a_in_lab(inventory, run)
        before = datetime.now(UTC)

        assert await send(pair, work, batch("jr_lab", observed_at_ms=YEAR_9999_MS)) == [BatchAcked("jr_lab", 1, 1)]

        [device] = await inventory.devices("lab")
        last_seen = device.last_seen.ToDatetime(tzinfo=UTC)
        assert before - timedelta(seconds=1) <= last_seen <= datetime.now(UTC)  # never after its arrival
        assert (device.zone, device.last_collector) == ("lab", "edge-a")


class Sealer:
    def __init__(self) -> None:
        self.sealed_for: list[tuple[str, str]] = []

    async def seal_credentials(self, *, instance_uid: str, names: list[str], context: str) -> agent_pb2.SealedSecret:
        self.sealed_for.append((instance_uid, context))
        return agent_pb2.SealedSecret(algorithm="test", context=context)


class Claims(RunsOf):
    async def claim(self, **_: object) -> list[scheduler_pb2.JobRun]:
        return [self.run]


async def test_credentials_are_sealed_only_for_a_run_leased_to_this_collector_in_its_zone() -> None:
    with_secret = scheduler_pb2.Discovery(name="prod-scan", targets=["10.9.0.0/29"], snmp_credential="prod-snmp")
    for run, sealed in [
        (scheduler_pb2.JobRun(id="jr_1", target_zone="lab", collector_instance_uid=OURS, attempt=1), True),
        (scheduler_pb2.JobRun(id="jr_2", target_zone="prod", collector_instance_uid=OURS, attempt=1), False),
        (scheduler_pb2.JobRun(id="jr_3", target_zone="lab", collector_instance_uid=THEIRS, attempt=1), False),
        (scheduler_pb2.JobRun(id="jr_4", target_collector="edge-b", collector_instance_uid=OURS, attempt=1), False),
    ]:
        run.discovery_snapshot.CopyFrom(with_secret)
        sealer = Sealer()
        ctx = WorkContext("gw-1", Claims(run), sealer, None, IngestGate())  # type: ignore[arg-type]
        pair = accepted_pair(ServerState.ENABLED)

        await SessionWork(ctx, OURS, "edge-a", "lab", deliver=lambda item: None).claim(pair.server)

        assert sealer.sealed_for == ([(OURS, run.id)] if sealed else []), run.id
