"""PostgreSQL's COPY-and-staging write (store/staged.py) leaves the inventory SQLite's statements leave.

The same batches go to a fresh SQLite store and a fresh PostgreSQL store through
`commit_batch`; every inventory table is then read back with device ids replaced by a
label that does not depend on the random ids (the zone and the IP the device was created
at), and the two must be equal row for row. The batches cover what the staged path does
differently: upserts of devices and ports, `device_macs` rows replaced, history and notes
COPYed, moved devices parked, missed-run counters reset; and a resend (nothing written),
a device moving IP (kept by its MAC), a device changing MAC, two observations of one MAC
in one batch (the MAC identifies nothing), and one device reported twice in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.gateway.inventory.domain.lifecycle import RetirementRule
from services.gateway.inventory.domain.observation import DeviceObservation, HttpInfo, PortObservation, SnmpFacts
from services.gateway.inventory.domain.run_targets import run_coverage
from services.gateway.inventory.store.commit import CommitResult, commit_batch
from services.gateway.inventory.store.database import open_inventory
from services.gateway.inventory.store.lifecycle import record_run_end
from services.gateway.inventory.store.models import (
    device_changes,
    device_macs,
    device_missed_runs,
    device_notes,
    device_ports,
    devices,
    ingested_batches,
)
from services.gateway.inventory.store.queries import InventoryStore
from tests.conftest import fresh_postgres_database

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SCANNED = (22, 80, 443)
DISCOVERY = "lab-scan"


@dataclass(frozen=True)
class Batch:
    run: str
    sequence: int
    observations: Sequence[DeviceObservation]
    hours: int = 0
    zone: str = "lab"
    ends_run: bool = False
    """After the batch its run ends: devices of 10.0.0.0/24 it did not report missed it (retired after 1)."""


def ssh(banner: str = "SSH-2.0-OpenSSH_9.6") -> PortObservation:
    return PortObservation(22, service="ssh", banner=banner)


def http(title: str = "Welcome") -> PortObservation:
    return PortObservation(80, service="http", http=HttpInfo(200, "nginx", title))


def host(ip: str, *ports: PortObservation, macs: Sequence[str] = (), **more: Any) -> DeviceObservation:
    return DeviceObservation(ip=ip, ports=tuple(ports), mac_addresses=tuple(macs), **more)


ROUTER = SnmpFacts(sys_name="core", sys_uptime_seconds=500, engine_id="80001f8801")

BATCHES = (
    # New devices: ports, MACs, SNMP, a hostname, notes; one with two MACs.
    Batch(
        "run-1",
        1,
        (
            host("10.0.0.1", ssh(), http(), macs=["AA:BB:CC:00:00:01"], hostname="a.lab", notes=("snmp: no answer",)),
            host("10.0.0.2", ssh(), macs=["aa:bb:cc:00:00:02", "aa:bb:cc:00:00:22"]),
            host("10.0.0.3", http(), snmp=ROUTER),
            host("10.0.0.4", ssh(), macs=["aa:bb:cc:00:00:04"]),
        ),
    ),
    # The same identity again: a resend (a lost ack), written nothing.
    Batch(
        "run-1",
        1,
        (host("10.0.0.9", ssh()),),
    ),
    # Two observations of one MAC at two IPs: the MAC identifies nothing; both are devices.
    # One device (10.0.0.6) reported twice in the batch: merged twice, created once.
    Batch(
        "run-1",
        2,
        (
            host("10.0.0.5", ssh(), macs=["aa:bb:cc:00:00:55"]),
            host("10.0.0.6", macs=["aa:bb:cc:00:00:55"], notes=("dns: no answer",)),
            host("10.0.0.6", http("Other"), hostname="six.lab"),
        ),
    ),
    # A second run, an hour later: 10.0.0.1 moved to 10.0.0.11 (same MAC); 10.0.0.2 changed a
    # MAC; 10.0.0.3's port 80 closed and its uptime went down; 10.0.0.4, .5, .6 not reported:
    # the run's end retires them.
    Batch(
        "run-2",
        1,
        (
            host("10.0.0.11", ssh("SSH-2.0-OpenSSH_9.7"), http(""), macs=["aa:bb:cc:00:00:01"], hostname=""),
            host("10.0.0.2", ssh(), macs=["aa:bb:cc:00:00:02", "aa:bb:cc:00:00:33"]),
            host("10.0.0.3", snmp=SnmpFacts(sys_name="core", sys_uptime_seconds=10, engine_id="80001f8801")),
        ),
        hours=1,
        ends_run=True,
    ),
    # A device takes the IP another one leaves in the same batch (both moves found by MAC):
    # 10.0.0.4's device goes to 10.0.0.8 (and, retired, is un-retired), 10.0.0.2's to 10.0.0.4.
    Batch(
        "run-3",
        1,
        (
            host("10.0.0.8", ssh(), macs=["aa:bb:cc:00:00:04"]),
            host("10.0.0.4", ssh(), macs=["aa:bb:cc:00:00:02"]),
        ),
        hours=2,
    ),
    # The same IPs in another zone are other devices.
    Batch("run-4", 1, (host("10.0.0.2", ssh(), macs=["aa:bb:cc:00:00:02"]),), hours=2, zone="dmz"),
    # A late batch of the first run: older than what run-2 recorded for 10.0.0.3 (stale).
    Batch("run-1", 3, (host("10.0.0.3", ssh()), host("10.0.0.7", ssh())), hours=0),
)


async def replay(store: InventoryStore) -> list[CommitResult]:
    results = []
    for batch in BATCHES:
        results.append(await replay_one(store, batch))
        if batch.ends_run:
            await record_run_end(
                store,
                zone=batch.zone,
                discovery=DISCOVERY,
                job_run_id=batch.run,
                coverage=run_coverage(["10.0.0.0/24"], []),
                rule=RetirementRule(missed_runs=1),
                now=T0 + timedelta(hours=batch.hours, minutes=30),
            )
    return results


async def snapshot(store: InventoryStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every inventory table, device ids replaced by (zone, IP at creation)."""
    async with store.read() as conn:
        created = {
            row.device_id: row.new_value
            for row in await conn.execute(
                sa.select(device_changes.c.device_id, device_changes.c.new_value).where(
                    device_changes.c.field == "created"
                )
            )
        }
        zones = {row.id: row.zone for row in await conn.execute(sa.select(devices.c.id, devices.c.zone))}
        label = {device_id: f"{zones[device_id]}/{ip}" for device_id, ip in created.items()}
        assert len(set(label.values())) == len(label)

        async def rows(table: sa.Table, order: Sequence[Any], drop: Sequence[str] = ()) -> list[tuple[Any, ...]]:
            result = await conn.execute(sa.select(table).order_by(*order))
            out = []
            for row in result.mappings():
                # JSON objects compare as sorted items: jsonb keeps its own key order.
                values: dict[str, Any] = {
                    k: tuple(sorted(v.items())) if isinstance(v, dict) else v for k, v in row.items() if k not in drop
                }
                if "id" in values and table is devices:
                    values["id"] = label[values["id"]]
                if "device_id" in values:
                    values["device_id"] = label[values["device_id"]]
                out.append(tuple(sorted(values.items())))
            return sorted(out, key=repr) if table is not device_changes else out

        return {
            "devices": await rows(devices, [devices.c.zone, devices.c.ip]),
            "device_ports": await rows(device_ports, [device_ports.c.device_id, device_ports.c.port]),
            "device_changes": await rows(device_changes, [device_changes.c.id], drop=["id"]),
            "device_macs": await rows(device_macs, [device_macs.c.zone, device_macs.c.mac]),
            "device_notes": await rows(device_notes, [device_notes.c.device_id, device_notes.c.source]),
            "device_missed_runs": await rows(device_missed_runs, [device_missed_runs.c.device_id]),
            "ingested_batches": await rows(
                ingested_batches, [ingested_batches.c.job_run_id, ingested_batches.c.sequence]
            ),
        }


async def test_postgresql_staged_writes_leave_the_inventory_sqlite_leaves(tmp_path: Path) -> None:
    sqlite = await open_inventory(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        sqlite_results = await replay(sqlite)
        sqlite_rows = await snapshot(sqlite)
    finally:
        await sqlite.close()
    async with fresh_postgres_database() as url:
        postgres = await open_inventory(url)
        try:
            postgres_results = await replay(postgres)
            postgres_rows = await snapshot(postgres)
        finally:
            await postgres.close()

    assert [(r.duplicate, r.devices, r.changes, r.stale) for r in postgres_results] == [
        (r.duplicate, r.devices, r.changes, r.stale) for r in sqlite_results
    ]
    for table, expected in sqlite_rows.items():
        assert postgres_rows[table] == expected, table

    # What the batches were meant to show, on both.
    assert [r.duplicate for r in sqlite_results] == [False, True, False, False, False, False, False]
    labels = sorted(dict(row)["id"] for row in sqlite_rows["devices"])
    assert labels == [
        "dmz/10.0.0.2",
        "lab/10.0.0.1",
        "lab/10.0.0.2",
        "lab/10.0.0.3",
        "lab/10.0.0.4",
        "lab/10.0.0.5",
        "lab/10.0.0.6",
        "lab/10.0.0.7",
    ]  # the resend's 10.0.0.9 was never written; the move kept one device
    ips = {dict(row)["id"]: dict(row)["ip"] for row in sqlite_rows["devices"]}
    assert ips["lab/10.0.0.1"] == "10.0.0.11"
    assert (ips["lab/10.0.0.4"], ips["lab/10.0.0.2"]) == ("10.0.0.8", "10.0.0.4")
    macs = [(dict(row)["mac"], dict(row)["device_id"]) for row in sqlite_rows["device_macs"]]
    assert ("aa:bb:cc:00:00:55", "lab/10.0.0.5") in macs and ("aa:bb:cc:00:00:55", "lab/10.0.0.6") in macs
    assert ("aa:bb:cc:00:00:22", "lab/10.0.0.2") not in macs  # replaced in run-2
    assert sqlite_results[-1].stale == 1
    retired = {dict(row)["id"]: dict(row)["retired_at"] for row in sqlite_rows["devices"]}
    assert sorted(label for label, at in retired.items() if at is not None) == ["lab/10.0.0.5", "lab/10.0.0.6"]
    assert sum(1 for row in sqlite_rows["device_changes"] if dict(row)["field"] == "created") == 8


async def test_a_batch_committed_twice_on_postgresql_is_applied_once_with_staging_reused() -> None:
    """The staging tables outlive a commit (per connection) and hold nothing into the next one."""
    async with fresh_postgres_database() as url:
        store = await open_inventory(url)
        try:
            for _ in range(3):
                first = await replay(store)
            counts = await row_counts(store)
            again = await replay(store)
            assert all(r.duplicate for r in again)
            assert await row_counts(store) == counts
            assert [r.duplicate for r in first] == [True] * len(BATCHES)
            async with store.write() as conn:
                staged = await conn.scalar(sa.text("SELECT count(*) FROM pg_temp.outpost_stage_devices"))
            assert staged == 0
        finally:
            await store.close()


async def test_a_failed_staged_commit_rolls_back_whole_and_the_resend_is_committed(tmp_path: Path) -> None:
    async with fresh_postgres_database() as url:
        store = await open_inventory(url)
        try:
            await replay_one(store, BATCHES[0])
            async with store.write() as conn:  # break the next write of device 10.0.0.1's ports
                await conn.execute(
                    sa.text(
                        "ALTER TABLE device_ports ADD CONSTRAINT no_banner_change "
                        "CHECK (banner <> 'SSH-2.0-OpenSSH_9.7')"
                    )
                )
            before = await row_counts(store)
            with pytest.raises(Exception, match="no_banner_change"):
                await replay_one(store, BATCHES[3])
            assert await row_counts(store) == before
            async with store.write() as conn:
                await conn.execute(sa.text("ALTER TABLE device_ports DROP CONSTRAINT no_banner_change"))
            result = await replay_one(store, BATCHES[3])
            assert (result.duplicate, result.devices) == (False, 3)
            counts = await row_counts(store)
            assert counts["ingested_batches"] == before["ingested_batches"] + 1
        finally:
            await store.close()


async def replay_one(store: InventoryStore, batch: Batch) -> CommitResult:
    return await commit_batch(
        store,
        collector_instance_uid="collector-1",
        collector_name="edge-1",
        zone=batch.zone,
        job_run_id=batch.run,
        attempt=1,
        sequence=batch.sequence,
        scanned_ports=SCANNED,
        observations=batch.observations,
        observed_at=T0 + timedelta(hours=batch.hours),
        now=T0 + timedelta(hours=batch.hours, minutes=1),
        probes=("tcp", "dns", "snmp"),
        discovery=DISCOVERY,
    )


async def row_counts(store: InventoryStore) -> dict[str, int]:
    tables = (devices, device_ports, device_changes, device_macs, device_notes, device_missed_runs, ingested_batches)
    async with store.read() as conn:
        return {t.name: int(await conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0) for t in tables}
