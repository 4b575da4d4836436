"""Ingest commit cost as one zone grows to 1,000,000 devices (issue 13 item 3: "throughput flat").

    .venv/bin/python bench/ingest_growth.py [--sizes 0 100000 300000 1000000] [--batches 20]
        [--devices-per-batch 64] [--json bench/results/ingest_growth.json]

Theory of operation
-------------------
The question is whether a batch's commit costs more as the zone holds more devices
(the MAC lookup read the zone: ADR 0007, docs/benchmarks.md). The collectors, transport
and gateway process are the same at every size, so this bench calls the store's
`commit_batch` in-process, the exact transaction the gateway runs per batch (dedup claim,
zone lock, lookup by IP / engine id / MAC, merge, bulk upserts, history), on a fresh
PostgreSQL database migrated by `open_inventory`.

For each size, in increasing order, the zone is first topped up to that many devices with
binary COPY (synthetic devices from `harness.synthetic`, each with its MAC, written
where the code under test keeps MACs: `devices.mac_addresses`, and `device_macs` when that
table exists; no ports, which no lookup reads), then `ANALYZE`d as autovacuum would.
Then `--batches` batches of `--devices-per-batch` new synthetic devices (never seen, from
a range far from the preseeded one) are committed one after another, each timed. Reported
per size: median and p90 ms per batch and rows/s (devices + ports + history rows written,
as `ingest_vs_copy.py` counts them), the ratio of the median to the empty zone's, and the
CPU each batch cost this process (from_proto, merge, the driver) and the PostgreSQL
backends of the bench database (from /proc, 10 ms ticks summed over all the batches):
on a shared machine wall time also measures the neighbours, CPU time much less so. Also
per batch: blocks of the gateway's tables and indexes read into PostgreSQL's shared
buffers (misses: from the OS cache or the disk) and found there (hits), from
`pg_statio_user_tables`; a cost that grows with the zone shows here first. The load
average is recorded per size.

The store writes a batch with binary COPY into staging tables and one `INSERT ... SELECT
... ON CONFLICT` per table on PostgreSQL (store/staged.py, ADR 0032); older code wrote
multi-row INSERTs. The table says which it found (`write path`).

Run it against older code with `PYTHONPATH=<checkout>/libs:<checkout>` to compare; the
table says which schema it found. Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import psutil
from harness.machine import finish, machine, markdown_table
from harness.synthetic import SCANNED_PORTS, device, ip_of, ports_of

from services.gateway.inventory.from_proto import observations_from_proto
from services.gateway.inventory.store.commit import commit_batch
from services.gateway.inventory.store.database import open_inventory
from services.gateway.inventory.store.queries import ip_sort_key

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parent.parent
ZONE = "growth"
MEASURED_FIRST = 12_000_000
"""Measured batches use synthetic devices from here on: never among the preseeded ones."""
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _mac(n: int) -> str:
    address = int.from_bytes(bytes(map(int, ip_of(n).split("."))), "big")
    return "02:00:" + ":".join(f"{(address >> shift) & 0xFF:02x}" for shift in (24, 16, 8, 0))


async def preseed(dsn: str, start: int, stop: int, has_device_macs: bool) -> float:
    """COPY devices start..stop-1 into the zone; returns the seconds it took."""
    started = time.perf_counter()
    connection = await asyncpg.connect(dsn, server_settings={"search_path": "gateway"})
    try:
        chunk = 100_000
        for first in range(start, stop, chunk):
            numbers = range(first, min(stop, first + chunk))
            records = [
                (
                    uuid.uuid4().hex,
                    ZONE,
                    ip_of(n),
                    ip_sort_key(ip_of(n)),
                    "",
                    f'["{_mac(n)}"]',
                    "",
                    "{}",
                    T0,
                    T0,
                    "seed",
                    "seed",
                    None,
                    "",
                )
                for n in numbers
            ]
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "devices",
                    records=records,
                    columns=[
                        "id",
                        "zone",
                        "ip",
                        "ip_sort",
                        "hostname",
                        "mac_addresses",
                        "snmp_engine_id",
                        "facts",
                        "first_seen",
                        "last_seen",
                        "last_collector",
                        "last_job_run_id",
                        "retired_at",
                        "retired_reason",
                    ],
                )
                if has_device_macs:
                    await connection.copy_records_to_table(
                        "device_macs",
                        records=[(ZONE, _mac(n), record[0]) for n, record in zip(numbers, records, strict=True)],
                        columns=["zone", "mac", "device_id"],
                    )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return time.perf_counter() - started


def _backend_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


async def measure_size(
    store: Any, size: int, batches: int, per_batch: int, offset: int, backends: Any, blocks: Any
) -> dict[str, Any]:
    millis: list[float] = []
    rows = 0
    pids = await backends()
    read_before, hit_before = await blocks()
    pg_before, own_before = _backend_cpu(pids), time.process_time()
    for index in range(batches):
        first = MEASURED_FIRST + offset + index * per_batch
        numbers = range(first, first + per_batch)
        observations = observations_from_proto([device(n) for n in numbers]).devices
        started = time.perf_counter()
        result = await commit_batch(
            store,
            collector_instance_uid="bench-collector",
            collector_name="bench",
            zone=ZONE,
            job_run_id=f"run-{size}",
            attempt=0,
            sequence=index + 1,
            scanned_ports=SCANNED_PORTS,
            observations=observations,
            observed_at=datetime.now(UTC),
            discovery="growth",
        )
        millis.append((time.perf_counter() - started) * 1000)
        rows += result.devices + result.changes + sum(ports_of(n) for n in numbers)
    pids = sorted(set(pids) | set(await backends()))
    pg_cpu, own_cpu = _backend_cpu(pids) - pg_before, time.process_time() - own_before
    read_after, hit_after = await blocks()
    median = statistics.median(millis)
    return {
        "size": size,
        "batches": batches,
        "devices_per_batch": per_batch,
        "bench_cpu_ms_per_batch": round(own_cpu * 1000 / batches, 2),
        "postgres_cpu_ms_per_batch": round(pg_cpu * 1000 / batches, 2),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "blocks_read_per_batch": round((read_after - read_before) / batches, 1),
        "blocks_hit_per_batch": round((hit_after - hit_before) / batches, 1),
        "median_ms": round(median, 2),
        "p90_ms": round(sorted(millis)[int(0.9 * (len(millis) - 1))], 2),
        "rows_per_second": round(rows / (sum(millis) / 1000)),
        "millis": [round(m, 2) for m in millis],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    database = f"outpost_bench_growth_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    dsn = args.admin_dsn.rsplit("/", 1)[0] + f"/{database}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    rows: list[dict[str, Any]] = []
    try:
        store = await open_inventory(url)
        probe = await asyncpg.connect(dsn)
        try:
            has_device_macs = bool(await probe.fetchval("SELECT to_regclass('gateway.device_macs') IS NOT NULL"))

            async def backends() -> list[int]:
                # Backends of the bench database but this probe (in practice the store's one).
                rows = await probe.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                return [row["pid"] for row in rows]

            async def blocks() -> tuple[int, int]:
                # The gateway tables' and indexes' blocks read into shared buffers (misses) and
                # found there (hits). Backends publish these counters at most once a second,
                # when idle: wait that long so the batches just committed are counted.
                await asyncio.sleep(2.0)
                await probe.execute("SELECT pg_stat_clear_snapshot()")
                row = await probe.fetchrow(
                    "SELECT coalesce(sum(heap_blks_read + coalesce(idx_blks_read, 0)), 0) AS read,"
                    " coalesce(sum(heap_blks_hit + coalesce(idx_blks_hit, 0)), 0) AS hit"
                    " FROM pg_statio_user_tables WHERE schemaname = 'gateway'"
                )
                return int(row["read"]), int(row["hit"])

            seeded = 0
            for number, size in enumerate(sorted(args.sizes)):
                seconds = await preseed(dsn, seeded, size, has_device_macs) if size > seeded else 0.0
                seeded = max(seeded, size)
                row = await measure_size(
                    store,
                    size,
                    args.batches,
                    args.devices_per_batch,
                    number * args.batches * args.devices_per_batch,
                    backends,
                    blocks,
                )
                row["preseed_seconds"] = round(seconds, 1)
                rows.append(row)
                print(
                    f"{size:>9} devices: median {row['median_ms']:.1f} ms/batch, {row['rows_per_second']} rows/s, "
                    f"CPU {row['bench_cpu_ms_per_batch']:.1f} ms here + {row['postgres_cpu_ms_per_batch']:.1f} ms "
                    f"PostgreSQL, load {row['loadavg_at_end'][0]}"
                )
        finally:
            await probe.close()
            await store.close()
    finally:
        admin = await asyncpg.connect(args.admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    staged = importlib.util.find_spec("services.gateway.inventory.store.staged") is not None
    return {
        "machine": machine(),
        "device_macs_table": has_device_macs,
        "write_path": "COPY into staging, INSERT ... SELECT ... ON CONFLICT" if staged else "multi-row INSERT",
        "rows": rows,
    }


def table(results: dict[str, Any]) -> str:
    rows = results["rows"]
    base = rows[0]["median_ms"]
    cpu_base = rows[0].get("postgres_cpu_ms_per_batch", 0) + rows[0].get("bench_cpu_ms_per_batch", 0)
    lines: list[tuple[str, ...]] = [
        (
            "devices in the zone",
            "ms per batch, median",
            "p90",
            "rows/s",
            "median / first",
            "CPU ms per batch: bench + PostgreSQL",
            "CPU / first",
            "blocks read / hit per batch",
            "load (1 min)",
        )
    ]
    for row in rows:
        cpu = row.get("postgres_cpu_ms_per_batch", 0) + row.get("bench_cpu_ms_per_batch", 0)
        lines.append(
            (
                f"{row['size']:,}",
                f"{row['median_ms']:.1f}",
                f"{row['p90_ms']:.1f}",
                f"{row['rows_per_second']:,}",
                f"{row['median_ms'] / base:.2f}",
                f"{row.get('bench_cpu_ms_per_batch', 0):.1f} + {row.get('postgres_cpu_ms_per_batch', 0):.1f}",
                f"{cpu / cpu_base:.2f}" if cpu_base else "-",
                f"{row.get('blocks_read_per_batch', 0):.0f} / {row.get('blocks_hit_per_batch', 0):.0f}",
                f"{row.get('loadavg_at_end', [0])[0]:.1f}",
            )
        )
    schema = (
        "device_macs table" if results["device_macs_table"] else "MACs looked up in devices.mac_addresses (JSONB ?|)"
    )
    path = results.get("write_path", "?")
    return (
        markdown_table(lines) + f"\nMAC lookup: {schema}; write path: {path}; {rows[0]['devices_per_batch']} per batch"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 100_000, 300_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--devices-per-batch", type=int, default=64)
    parser.add_argument("--admin-dsn", default=ADMIN_DSN)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "ingest_growth.json")
    args = parser.parse_args()
    started = time.monotonic()
    results = asyncio.run(run(args))
    finish(results, table(results), args.json, started)


if __name__ == "__main__":
    main()
