"""Time you can trust and nothing found dropped (issue 10, items 3-4), through the real store.

Server-side time: a collector's clock corrected by the skew the session measured, bounded by
the batch's arrival. A stale observation is logged, counted in the metric, summed per run
in the store and handed to `on_stale` (the scheduler's `JobRun.observations_stale`). Device
notes are stored per probe and served by `InventoryService`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from outpost.agent.v1 import agent_pb2
from services.gateway.inventory.ingest import BatchIngest
from services.gateway.inventory.store.commit import CommitResult
from tests.integration.test_inventory_support import (
    COLLECTOR_UID,
    RunningInventory,
    batch,
    device,
    later,
    running_inventory,
)

HOUR_MS = 3_600_000


def stale_metric() -> float:
    return REGISTRY.get_sample_value("outpost_gateway_observations_stale_total") or 0.0


async def ingest(
    ingest: BatchIngest,
    result_batch: agent_pb2.ResultBatch,
    *,
    skew_ms: int = 0,
    probes: list[str] | None = None,
) -> CommitResult:
    return await ingest.ingest(
        result_batch,
        instance_uid=COLLECTOR_UID,
        collector="edge-1",
        zone="dmz",
        scanned_ports=[22],
        clock_skew_ms=skew_ms,
        probes=probes,
    )


def noted(ip: str, *notes: str) -> agent_pb2.DeviceObservation:
    observation = device(ip)
    observation.notes.extend(notes)
    return observation


async def notes_of(inventory: RunningInventory, ip: str) -> list[str]:
    return list((await inventory.device(ip)).device.notes)


async def test_a_collector_an_hour_ahead_is_stored_at_server_time(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        received = datetime.now(UTC).replace(microsecond=0)
        ahead = BatchIngest(inventory.store, clock=lambda: received)
        stamped = agent_pb2.ResultBatch(
            job_run_id="run-fast", sequence=1, attempt=1, devices=[device("10.0.0.1")],
            observed_at_unix_ms=int(received.timestamp() * 1000) + HOUR_MS,
        )  # fmt: skip

        await ingest(ahead, stamped, skew_ms=HOUR_MS)

        [stored] = await inventory.devices()
        assert stored.last_seen.ToDatetime(tzinfo=UTC) == received.replace(
            microsecond=received.microsecond // 1000 * 1000
        )


async def test_a_late_spooled_batch_is_skipped_logged_counted_and_summed_per_run(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        counted: list[tuple[str, str, int]] = []
        gateway = BatchIngest(inventory.store, on_stale=lambda uid, run, total: counted.append((uid, run, total)))
        await ingest(gateway, batch("run-new", 1, [device("10.0.0.1"), device("10.0.0.2")], later(2)))
        before = stale_metric()

        with capture_logs() as logs:
            first = await ingest(gateway, batch("run-old", 1, [device("10.0.0.1")], later(0)))
            second = await ingest(gateway, batch("run-old", 2, [device("10.0.0.2"), device("10.0.0.3")], later(0)))

        assert (first.stale, first.run_stale_total) == (1, 1)
        assert (second.stale, second.run_stale_total, second.devices) == (1, 2, 1)  # 10.0.0.3 is new
        assert stale_metric() - before == 2
        assert counted == [(COLLECTOR_UID, "run-old", 1), (COLLECTOR_UID, "run-old", 2)]
        stale = [entry for entry in logs if entry["event"] == "observation_stale"]
        assert [(e["ip"], e["job_run_id"], e["last_job_run_id"]) for e in stale] == [
            ("10.0.0.1", "run-old", "run-new"),
            ("10.0.0.2", "run-old", "run-new"),
        ]
        assert stale[0]["observed_at"] == later(0).isoformat()
        assert stale[0]["last_seen"] == later(2).isoformat()
        assert (await inventory.device("10.0.0.1")).device.last_job_run_id == "run-new"  # nothing rolled back

        resent = await ingest(gateway, batch("run-old", 2, [device("10.0.0.2")], later(0)))
        assert resent.duplicate and counted[-1] == (COLLECTOR_UID, "run-old", 2)  # a resend counts nothing


async def test_notes_are_the_newest_per_probe_and_are_served(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        gateway = inventory.ingest
        await ingest(
            gateway,
            batch("run-1", 1, [noted("10.0.0.1", "snmp: no answer", "dns: the resolver did not answer in time")]),
            probes=["icmp", "tcp", "dns", "snmp"],
        )
        assert await notes_of(inventory, "10.0.0.1") == [
            "dns: the resolver did not answer in time",
            "snmp: no answer",
        ]
        assert [list(d.notes) for d in await inventory.devices()] == [
            ["dns: the resolver did not answer in time", "snmp: no answer"]
        ]

        # A run without SNMP: the SNMP note stands; DNS ran and said nothing, so its note goes.
        await ingest(gateway, batch("run-2", 1, [noted("10.0.0.1")], later(1)), probes=["icmp", "tcp", "dns"])
        assert await notes_of(inventory, "10.0.0.1") == ["snmp: no answer"]

        # SNMP ran again and complained differently: replaced, not added.
        await ingest(gateway, batch("run-3", 1, [noted("10.0.0.1", "snmp: timeout")], later(2)), probes=["snmp"])
        assert await notes_of(inventory, "10.0.0.1") == ["snmp: timeout"]
        assert [f for f, *_ in await inventory.history("10.0.0.1")] == ["created"]  # notes are not history
