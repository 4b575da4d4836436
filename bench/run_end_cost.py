"""What a job run's end costs the inventory (missed runs, retirement) as a zone grows, beside a bare read.

    .venv/bin/python bench/run_end_cost.py [--sizes 1000,10000,100000] [--runs 5]
        [--json bench/results/run_end_cost.json] [--png bench/results/run_end_cost.png]
    .venv/bin/python bench/run_end_cost.py --quick      # smoke run, a few seconds

Why: issue 10 made a successful run's end count a missed run for every device of the zone
the run covered and did not report, and apply the retirement rule
(`services/gateway/inventory/store/lifecycle.py`). That step reads the whole zone in one
transaction under the zone's lock, so its cost grows with the zone, and ingest of the same
zone waits for it. This measures by how much.

Theory of operation
-------------------
Per size N, a fresh PostgreSQL database (`outpost_bench_<random>`, dropped at the end)
migrated by the real inventory store; N devices seeded in one zone (10.0.0.0/8 addresses,
one COPY). Then `--runs` successive run ends of one discovery that covers every device and
reported none (the worst case: every device missed), each timed from the call to the
commit, with the default rule (retire after 5 missed runs):

- run 1 inserts a counter row per device;
- runs 2..4 update every counter;
- run 5 retires every device (an update and a history row each).

Baseline in the same run: asyncpg reading the same columns of the zone (`SELECT id, ip,
last_seen, retired_at FROM devices WHERE zone = $1`), median of 5, the floor of any design
that looks at each device of the zone once. Reported: milliseconds per run end, µs per
device, and the ratio to the bare read. Nothing here asserts; it prints a table, writes
JSON and a PNG plot (matplotlib, from the `bench` extra: `pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from harness.machine import finish, machine, markdown_table
from harness.plane import ADMIN_DSN, TempDatabase

from outpost.targets import TargetSet, parse_target
from services.gateway.inventory.domain.lifecycle import RetirementRule
from services.gateway.inventory.store.database import open_inventory
from services.gateway.inventory.store.lifecycle import record_run_end
from services.gateway.inventory.store.queries import ip_sort_key

ZONE = "bench"
DISCOVERY = "sweep"
UNLIMITED = 2**128
BASELINE_REPEATS = 5


async def seed(dsn: str, count: int) -> None:
    """`count` devices of ZONE, seen a day ago, by one binary COPY into gateway.devices."""
    seen = datetime.now(UTC) - timedelta(days=1)
    base = int(ipaddress.IPv4Address("10.0.0.1"))
    records = []
    for n in range(count):
        ip = str(ipaddress.IPv4Address(base + n))
        records.append(
            (uuid.uuid4().hex, ZONE, ip, ip_sort_key(ip), "", "[]", "", "{}", seen, seen, "edge", "run-0", None, "")
        )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "devices",
            schema_name="gateway",
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
        await conn.execute("ANALYZE gateway.devices")
    finally:
        await conn.close()


async def bare_read_ms(dsn: str) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        times = []
        for _ in range(BASELINE_REPEATS):
            started = time.perf_counter()
            await conn.fetch("SELECT id, ip, last_seen, retired_at FROM gateway.devices WHERE zone = $1", ZONE)
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)
    finally:
        await conn.close()


async def one_size(count: int, runs: int, admin_dsn: str) -> dict[str, Any]:
    database = await TempDatabase(admin_dsn=admin_dsn).create()
    try:
        store = await open_inventory(database.url)
        try:
            await seed(database.dsn, count)
            baseline = await bare_read_ms(database.dsn)
            coverage = TargetSet.build([parse_target("10.0.0.0/8")], limit=UNLIMITED)
            ends = []
            for n in range(1, runs + 1):
                started = time.perf_counter()
                end = await record_run_end(
                    store,
                    zone=ZONE,
                    discovery=DISCOVERY,
                    job_run_id=f"run-{n}",
                    coverage=coverage,
                    rule=RetirementRule(),
                    now=datetime.now(UTC),
                )
                ends.append(
                    {
                        "run": n,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                        "covered": end.covered,
                        "missed": end.missed,
                        "retired": end.retired,
                    }
                )
                print(f"  {count:>7} devices  run {n}: {ends[-1]['ms']:>9.1f} ms  {end}", flush=True)
        finally:
            await store.close()
    finally:
        await database.drop()
    steady = [e["ms"] for e in ends if 1 < e["run"] < runs] or [ends[-1]["ms"]]
    return {
        "devices": count,
        "bare_read_ms": round(baseline, 2),
        "run_ends": ends,
        "first_ms": ends[0]["ms"],
        "steady_ms": round(statistics.median(steady), 1),
        "retiring_ms": ends[-1]["ms"] if ends[-1]["retired"] else None,
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        (
            "devices in zone",
            "bare read (ms)",
            "run 1 (ms)",
            "runs 2-4 median (ms)",
            "µs / device",
            "x bare read",
            "retiring run (ms)",
        )
    ]
    for size in results["sizes"]:
        steady = size["steady_ms"]
        rows.append(
            (
                f"{size['devices']:,}",
                f"{size['bare_read_ms']:.1f}",
                f"{size['first_ms']:.0f}",
                f"{steady:.0f}",
                f"{steady * 1000 / size['devices']:.1f}",
                f"{steady / size['bare_read_ms']:.1f}",
                "-" if size["retiring_ms"] is None else f"{size['retiring_ms']:.0f}",
            )
        )
    return markdown_table(rows)


def plot(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return False
    sizes = [s["devices"] for s in results["sizes"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(sizes, [s["steady_ms"] for s in results["sizes"]], marker="o", label="run end (runs 2-4 median)")
    ax.plot(sizes, [s["first_ms"] for s in results["sizes"]], marker="s", label="first run end (inserts counters)")
    ax.plot(sizes, [s["bare_read_ms"] for s in results["sizes"]], marker="^", label="bare read of the zone")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("devices in the zone")
    ax.set_ylabel("milliseconds")
    ax.set_title("Cost of a run's end (missed runs, retirement), PostgreSQL")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--admin-dsn", default=ADMIN_DSN)
    parser.add_argument("--json", type=Path, default=Path("bench/results/run_end_cost.json"))
    parser.add_argument("--png", type=Path, default=Path("bench/results/run_end_cost.png"))
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 devices, 3 runs")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.runs = "100,1000", 3
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "runs": args.runs, "sizes": []}
    for count in (int(s) for s in args.sizes.split(",")):
        results["sizes"].append(asyncio.run(one_size(count, args.runs, args.admin_dsn)))
    results["png"] = str(args.png) if plot(results, args.png) else None
    finish(results, table(results), args.json, started)


if __name__ == "__main__":
    main()
