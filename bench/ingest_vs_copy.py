"""Ingest into PostgreSQL through the gateway (rows/s, dedup + ack after commit) beside raw asyncpg COPY.

    .venv/bin/python bench/ingest_vs_copy.py [--collectors 10] [--batches 100] [--devices-per-batch 64]
        [--repeats 3] [--window 16] [--zones per-collector|shared] [--json bench/results/ingest_vs_copy.json]
    .venv/bin/python bench/ingest_vs_copy.py --quick      # smoke run, well under a minute

Goal (issue 5, issue 13 item 3): the gateway's ingest rate is at least 50 % of raw COPY of
the same rows into tables with the same keys (the "indexed" COPY below).

Theory of operation
-------------------
A fresh PostgreSQL database `outpost_bench_<random>` on `--admin-dsn` (default
127.0.0.1:5432, trust auth) holds everything; it is dropped at the end. Registry,
scheduler and gateway run as real processes on it (each service in its own schema, as
in production). The collectors live in this process: `harness.batch_collector.BatchCollector`,
the real `CollectorSession` over the real collector transport (`--transport`, gRPC by
default; each collector its own TCP connection), its own key and instance uid, enrolled
as in the other benches (announce, RegisterCollector with enable, one cheap
argon2 verifier per collector). By default each collector has its own zone (`--zones per-collector`,
ADR 0007's common deployment: the gateway serializes commits per zone); `--zones shared`
puts all of them in one.

Each collector gets one discovery (`--collector` it, ports = every port the synthetic
devices answer on). Per repeat:

1. **Dispatch** (not timed): StartDiscovery for every collector; each waits for its
   JobAssignment and answers RUNNING, so the gateway accepts its batches (it refuses
   batches of runs not dispatched to that collector). The batches are built now:
   `--batches` per collector of `--devices-per-batch` synthetic devices
   (`harness/synthetic.py`: distinct IPs never seen before in this database, one to
   five ports each with realistic banners, a MAC, SNMP facts on every eighth).
2. **Ingest** (timed): every collector streams its batches at once, at most `--window`
   unacknowledged (the collector's send window), the next as soon as an ack frees a
   slot. The gateway commits each batch in one transaction (dedup claim, zone lock,
   merge, bulk upserts, history) and acks only after the commit. Time = first batch
   sent (any collector) to last ack received (any collector).
   **Rows** = rows the ingest actually wrote, counted in the database before and after:
   `gateway.devices` + `gateway.device_ports` + `gateway.device_changes` (every device
   is new, so one `created` history row each). The dedup bookkeeping rows
   (`ingested_batches`, one per batch) are reported but not counted as rows.
3. **Resend** (timed): every collector sends all its batches of this repeat again, same
   identities (a collector whose acks were lost). **Dedup rate** = resent batches that
   wrote nothing / resent batches, from the same counts (`ingested_batches` and the three
   tables must not grow); also duplicates acked per second. Then each run is ended
   (SUCCEEDED) and the bench waits until the scheduler has it final.
4. **Raw COPY** (timed, same repeat, same database): the rows the gateway wrote in step 2
   are read back, then written with asyncpg `copy_records_to_table` (binary COPY, one
   connection, one transaction, all three tables, timed from the first COPY to the
   commit) into identically shaped plain tables (`CREATE TABLE bench_copy.x (LIKE
   gateway.x)`: same columns and types, no keys or indexes), and again into tables with
   the gateway's keys and indexes (`LIKE ... INCLUDING ALL`; foreign keys are never
   copied by LIKE). Both are truncated first. COPY starts from rows already in memory:
   it is the floor of what PostgreSQL needs to store them, not an alternative design.

Reported per repeat and as median (min-max): rows/s through the gateway, rows/s by COPY,
their ratio; the same ratio by CPU seconds per row (COPY's PostgreSQL CPU over ingest's
gateway + PostgreSQL CPU: on a shared machine the rates also measure the neighbours);
the load average at the start and end of each repeat; CPU seconds of the gateway, this process (the collectors) and the
`postgres` processes alive at the end of each timed phase (approximate: a backend that
exits mid-phase is missed; the server is shared with whatever else uses it). Nothing
here asserts; it prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from harness.bare_servers import OWN_CONNECTION
from harness.batch_collector import SEND_WINDOW, BatchCollector
from harness.credentials import authorized_channel
from harness.enroll import PASSWORD, USERNAME, close_all, enroll
from harness.idle_collector import CollectorIdentity, sealing
from harness.machine import finish, machine, markdown_table, raise_fd_limit
from harness.plane import ADMIN_DSN, Plane, TempDatabase
from harness.synthetic import CAPACITY, SCANNED_PORTS, batches, ports_of

from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.collector.domain.server_url import parse_server_url
from services.collector.transport import grpc_stream

REPO = Path(__file__).resolve().parent.parent
TABLES = ("devices", "device_ports", "device_changes")
COUNTED = (*TABLES, "ingested_batches")
COPY_TARGETS = {"plain": "bench_copy", "indexed": "bench_copy_indexed"}
ASSIGN_TIMEOUT = 120.0
END_TIMEOUT = 600.0
"""A run reaches its final state once its collector reported the end and the scheduler took it:
slow on a loaded machine (the gateway retries the final update for about two minutes)."""
TERMINAL = frozenset(
    {
        agent_pb2.JOB_STATE_SUCCEEDED,
        agent_pb2.JOB_STATE_FAILED,
        agent_pb2.JOB_STATE_TIMED_OUT,
        agent_pb2.JOB_STATE_CANCELLED,
    }
)
QUICK = {"collectors": 4, "batches": 10, "devices_per_batch": 64, "repeats": 2}
FULL = {"collectors": 10, "batches": 100, "devices_per_batch": 64, "repeats": 3}

# Each collector is its own process in production, with its own TCP connection; grpc
# shares one connection between channels to the same target unless told not to.
grpc_stream.CHANNEL_OPTIONS = [*grpc_stream.CHANNEL_OPTIONS, OWN_CONNECTION]


# --- measuring ------------------------------------------------------------------------------------
def _cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every `postgres` process, by pid."""
    seen: dict[int, float] = {}
    for process in psutil.process_iter(["name"]):
        if (process.info.get("name") or "").startswith("postgres"):
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            seen[process.pid] = float(times.user + times.system)
    return seen


def cpu_snapshot(plane: Plane) -> dict[str, Any]:
    assert plane.gateway is not None
    return {
        "gateway": _cpu(plane.gateway.pid),
        "bench (collectors)": _cpu(os.getpid()),
        "postgres (approx.)": _postgres_cpu(),
    }


def cpu_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """CPU seconds between two snapshots; for postgres, of the processes alive at the end."""
    out = {name: round(after[name] - before[name], 3) for name in before if not isinstance(before[name], dict)}
    for name, pids in after.items():
        if isinstance(pids, dict):
            out[name] = round(sum(cpu - before[name].get(pid, 0.0) for pid, cpu in pids.items()), 3)
    return out


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow("SELECT " + ", ".join(f"(SELECT count(*) FROM gateway.{t}) AS {t}" for t in COUNTED))
    assert row is not None
    return {t: int(row[t]) for t in COUNTED}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {t: after[t] - before[t] for t in before}


def rows_of(change: dict[str, int]) -> int:
    return sum(change[t] for t in TABLES)


# --- the pieces of a repeat -----------------------------------------------------------------------
async def create_discoveries(stub: scheduler_pb2_grpc.SchedulerServiceStub, names: list[str]) -> None:
    for name in names:
        await stub.CreateDiscovery(
            scheduler_pb2.CreateDiscoveryRequest(
                discovery=scheduler_pb2.Discovery(
                    name=f"ingest-{name}",
                    # The synthetic collectors answer without scanning; the scheduler refuses
                    # a /8 (16,777,216 addresses) at create, as a collector would at run time.
                    targets=["10.0.0.0/12"],
                    ports=SCANNED_PORTS,
                    probes=["tcp", "banners"],
                    collector=name,
                )
            ),
            timeout=30,
        )


async def dispatch(
    stub: scheduler_pb2_grpc.SchedulerServiceStub, collectors: list[BatchCollector]
) -> list[agent_pb2.JobAssignment]:
    """One new run per collector, started and assigned; each collector has answered RUNNING."""
    known = [set(c.assignments) for c in collectors]
    for collector in collectors:
        await stub.StartDiscovery(
            scheduler_pb2.StartDiscoveryRequest(name=f"ingest-{collector.identity.name}", actor="bench"), timeout=60
        )
    return list(
        await asyncio.gather(
            *(c.wait_for_assignment(k, ASSIGN_TIMEOUT) for c, k in zip(collectors, known, strict=True))
        )
    )


async def stream(
    collectors: list[BatchCollector], work: list[list[agent_pb2.ResultBatch]], timeout: float
) -> dict[str, Any]:
    """Every collector streams its batches; first send -> last ack, acks and throttles."""
    for collector, batches_of_one in zip(collectors, work, strict=True):
        collector.send(batches_of_one)
    phases = await asyncio.gather(*(c.wait_acked(timeout) for c in collectors))
    first = min(p.first_send_at for p in phases if p.first_send_at is not None)
    last = max(p.last_ack_at for p in phases if p.last_ack_at is not None)
    return {
        "seconds": last - first,
        "batches": sum(p.batches for p in phases),
        "acked": sum(p.acked for p in phases),
        "unexpected_acks": sum(p.unexpected_acks for p in phases),
        "throttles": sum(p.throttles for p in phases),
        "throttle_seconds": round(sum(p.throttle_seconds for p in phases), 3),
        "per_collector_seconds": [
            round(p.last_ack_at - p.first_send_at, 3)
            for p in phases
            if p.first_send_at is not None and p.last_ack_at is not None
        ],
    }


async def wait_ended(stub: scheduler_pb2_grpc.SchedulerServiceStub, run_ids: list[str]) -> None:
    deadline = time.monotonic() + END_TIMEOUT
    remaining = set(run_ids)
    while remaining:
        for run_id in sorted(remaining):
            run = (await stub.GetJobRun(scheduler_pb2.GetJobRunRequest(id=run_id), timeout=30)).job_run
            if run.state in TERMINAL:
                remaining.discard(run_id)
        if remaining and time.monotonic() > deadline:
            raise RuntimeError(f"{len(remaining)} runs not final after {END_TIMEOUT:g}s")
        if remaining:
            await asyncio.sleep(0.2)


async def prepare_copy_tables(conn: asyncpg.Connection) -> None:
    for schema, including in ((COPY_TARGETS["plain"], ""), (COPY_TARGETS["indexed"], " INCLUDING ALL")):
        await conn.execute(f"CREATE SCHEMA {schema}")
        for table in TABLES:
            await conn.execute(f"CREATE TABLE {schema}.{table} (LIKE gateway.{table}{including})")


async def rows_written(conn: asyncpg.Connection, run_ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    """What the gateway wrote for these runs, read back for COPY (not timed)."""
    return {
        "devices": await conn.fetch("SELECT * FROM gateway.devices WHERE last_job_run_id = ANY($1::text[])", run_ids),
        "device_ports": await conn.fetch(
            "SELECT p.* FROM gateway.device_ports p JOIN gateway.devices d ON d.id = p.device_id "
            "WHERE d.last_job_run_id = ANY($1::text[])",
            run_ids,
        ),
        "device_changes": await conn.fetch(
            "SELECT * FROM gateway.device_changes WHERE job_run_id = ANY($1::text[])", run_ids
        ),
    }


Prepared = dict[str, tuple[list[tuple[Any, ...]], list[str]]]


def prepare(rows: dict[str, list[asyncpg.Record]]) -> Prepared:
    """Records as plain tuples, with their column names."""
    return {
        table: ([tuple(r) for r in records], list(records[0].keys()) if records else [])
        for table, records in rows.items()
    }


async def truncate(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f"TRUNCATE {', '.join(f'{schema}.{t}' for t in TABLES)}")


async def copy_rows(conn: asyncpg.Connection, schema: str, prepared: Prepared) -> float:
    """COPY every table in one transaction; seconds from the first COPY to the commit."""
    started = time.perf_counter()
    async with conn.transaction():
        for table, (records, columns) in prepared.items():
            if records:
                await conn.copy_records_to_table(table, records=records, columns=columns, schema_name=schema)
    return time.perf_counter() - started


async def one_repeat(
    repeat: int,
    args: argparse.Namespace,
    plane: Plane,
    stub: scheduler_pb2_grpc.SchedulerServiceStub,
    conn: asyncpg.Connection,
    collectors: list[BatchCollector],
) -> dict[str, Any]:
    assignments = await dispatch(stub, collectors)
    run_ids = [a.job_run_id for a in assignments]
    per_collector = args.batches * args.devices_per_batch
    observed_ms = int(time.time() * 1000)
    work = []
    expected = {"devices": 0, "device_ports": 0, "device_changes": 0, "ingested_batches": 0}
    for index, assignment in enumerate(assignments):
        first = (repeat * len(collectors) + index) * per_collector
        work.append(
            list(
                batches(
                    assignment.job_run_id,
                    assignment.attempt,
                    first,
                    args.batches,
                    args.devices_per_batch,
                    observed_ms,
                )
            )
        )
        expected["devices"] += per_collector
        expected["device_ports"] += sum(ports_of(n) for n in range(first, first + per_collector))
        expected["device_changes"] += per_collector
        expected["ingested_batches"] += args.batches
    wire_bytes = sum(b.ByteSize() for one in work for b in one)

    before, cpu_before, load = await counts(conn), cpu_snapshot(plane), os.getloadavg()[0]
    ingest = await stream(collectors, work, args.phase_timeout)
    cpu_ingest = cpu_delta(cpu_before, cpu_snapshot(plane))
    ingested = delta(before, await counts(conn))
    rows = rows_of(ingested)

    before, cpu_before = await counts(conn), cpu_snapshot(plane)
    resend = await stream(collectors, work, args.phase_timeout)
    cpu_resend = cpu_delta(cpu_before, cpu_snapshot(plane))
    resent = delta(before, await counts(conn))
    for collector, run_id in zip(collectors, run_ids, strict=True):
        collector.finish(run_id)
    await wait_ended(stub, run_ids)
    plane.check_alive()

    written = prepare(await rows_written(conn, run_ids))
    read_back = sum(len(records) for records, _ in written.values())
    copies: dict[str, Any] = {}
    for kind, schema in COPY_TARGETS.items():
        await truncate(conn, schema)
        cpu_before = cpu_snapshot(plane)
        seconds = await copy_rows(conn, schema, written)
        copies[kind] = {
            "rows": read_back,
            "seconds": round(seconds, 4),
            "rows_per_second": round(read_back / seconds, 1),
            "cpu_seconds": cpu_delta(cpu_before, cpu_snapshot(plane)),
        }
    rate = rows / ingest["seconds"]
    batches_resent = resend["batches"]
    deduplicated = batches_resent - resent["ingested_batches"]
    return {
        "repeat": repeat + 1,
        "loadavg_1min_at_start": round(load, 2),
        "job_run_attempts": sorted({a.attempt for a in assignments}),
        "repeated_assignments": sum(c.repeated_assignments for c in collectors),
        "wire_bytes": wire_bytes,
        "expected": expected,
        "ingest": {
            **{k: v for k, v in ingest.items() if k != "seconds"},
            "seconds": round(ingest["seconds"], 4),
            "written": ingested,
            "rows": rows,
            "lost_rows": rows_of(expected) - rows,
            "rows_per_second": round(rate, 1),
            "devices_per_second": round(ingested["devices"] / ingest["seconds"], 1),
            "batches_per_second": round(ingest["batches"] / ingest["seconds"], 1),
            "cpu_seconds": cpu_ingest,
        },
        "resend": {
            **{k: v for k, v in resend.items() if k != "seconds"},
            "seconds": round(resend["seconds"], 4),
            "written": resent,
            "rows_doubled": rows_of(resent),
            "deduplicated_batches": deduplicated,
            "dedup_rate": round(deduplicated / batches_resent, 4) if batches_resent else None,
            "duplicates_per_second": round(batches_resent / resend["seconds"], 1),
            "cpu_seconds": cpu_resend,
        },
        "copy": copies,
        "ratio_to_copy_plain": round(rate / copies["plain"]["rows_per_second"], 4),
        "ratio_to_copy_indexed": round(rate / copies["indexed"]["rows_per_second"], 4),
        # CPU per row, same rows: what COPY (PostgreSQL only) spends over what ingest spends
        # (gateway + PostgreSQL). Less sensitive than rates to the neighbours of a shared machine.
        "cpu_ratio_to_copy_indexed": _cpu_ratio(cpu_ingest, copies["indexed"]["cpu_seconds"]),
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
    }


def _cpu_ratio(ingest: dict[str, float], copy: dict[str, float]) -> float | None:
    spent = ingest.get("gateway", 0.0) + ingest.get("postgres (approx.)", 0.0)
    copied = copy.get("postgres (approx.)", 0.0) + copy.get("bench (collectors)", 0.0)
    return round(copied / spent, 4) if spent > 0 and copied > 0 else None


# --- the run ----------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, plane: Plane, database: TempDatabase, workdir: Path) -> dict[str, Any]:
    fds = raise_fd_limit()
    results: dict[str, Any] = {
        "figure": "ingest_vs_copy",
        "machine": machine(),
        "settings": {
            "quick": args.quick,
            "collectors": args.collectors,
            "batches_per_collector": args.batches,
            "devices_per_batch": args.devices_per_batch,
            "repeats": args.repeats,
            "window": args.window,
            "zones": args.zones,
            "transport": args.transport,
            "database": f"PostgreSQL, fresh database {database.name} (dropped afterwards)",
            "rows": "devices + device_ports + device_changes rows written (ingested_batches not counted)",
            "copy": "asyncpg copy_records_to_table, one connection, one transaction, all three tables",
            "fd_limit": list(fds),
        },
    }
    step = _stepper()
    await step("fresh database", database.create)
    plane.database_url = database.url
    await step("registry, scheduler, gateway", plane.start)
    async with authorized_channel(plane.scheduler_ready["grpc"], plane.credentials.admin_token) as channel:
        conn = await asyncpg.connect(database.dsn)
        try:
            server_version = conn.get_server_version()
            results["settings"]["postgres_version"] = f"{server_version.major}.{server_version.minor}"
            await prepare_copy_tables(conn)
            stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
            verifier = PASSWORD  # hello() binds it to each key (ADR 0013)
            url = parse_server_url(plane.url(args.transport))

            def make(i: int) -> BatchCollector:
                identity = CollectorIdentity.generate(f"ingest-{i:04d}")
                hello = identity.hello(USERNAME, verifier)
                hello.zone = f"bench-{i:04d}" if args.zones == "per-collector" else "bench"
                # Sealed with the plane's access key, as the gateway requires (ADR 0019).
                return BatchCollector(identity, hello, sealing(plane.access_key_file), window=args.window)

            collectors = await step(
                f"enroll {args.collectors} collectors",
                lambda: enroll(make, args.collectors, url, plane.registry_ready["grpc"], plane.credentials.admin_token),
            )
            try:
                collectors.sort(key=lambda c: c.identity.name)
                names = [c.identity.name for c in collectors]
                await step("create discoveries", lambda: create_discoveries(stub, names))
                results["repeats"] = []
                for repeat in range(args.repeats):
                    figure = await step(
                        f"repeat {repeat + 1}/{args.repeats}",
                        lambda repeat=repeat: one_repeat(repeat, args, plane, stub, conn, collectors),  # type: ignore[misc]
                    )
                    results["repeats"].append(figure)
                    print(
                        f"    gateway {figure['ingest']['rows_per_second']:.0f} rows/s, "
                        f"COPY {figure['copy']['plain']['rows_per_second']:.0f} rows/s "
                        f"(ratio {figure['ratio_to_copy_plain']:.2f}); "
                        f"dedup {figure['resend']['dedup_rate']:.1%}"
                    )
            finally:
                await close_all(collectors)
        finally:
            await conn.close()
    results["summary"] = summarize(results["repeats"])
    return results


def _stepper() -> Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]:
    async def step(name: str, work: Callable[[], Awaitable[Any]]) -> Any:
        started = time.monotonic()
        value = await work()
        print(f"  {name}: {time.monotonic() - started:.1f}s")
        return value

    return step


# --- reporting --------------------------------------------------------------------------------------
def spread(values: list[float], digits: int = 1) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def summarize(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    ratio = spread([r["ratio_to_copy_indexed"] for r in repeats], 3)
    cpu_ratios = [r["cpu_ratio_to_copy_indexed"] for r in repeats if r.get("cpu_ratio_to_copy_indexed")]
    return {
        "gateway_rows_per_second": spread([r["ingest"]["rows_per_second"] for r in repeats]),
        "gateway_devices_per_second": spread([r["ingest"]["devices_per_second"] for r in repeats]),
        "gateway_batches_per_second": spread([r["ingest"]["batches_per_second"] for r in repeats]),
        "copy_plain_rows_per_second": spread([r["copy"]["plain"]["rows_per_second"] for r in repeats]),
        "copy_indexed_rows_per_second": spread([r["copy"]["indexed"]["rows_per_second"] for r in repeats]),
        "ratio_to_copy_plain": spread([r["ratio_to_copy_plain"] for r in repeats], 3),
        "ratio_to_copy_indexed": ratio,
        "cpu_ratio_to_copy_indexed": spread(cpu_ratios, 3) if cpu_ratios else None,
        "goal_half_of_copy_met": ratio["median"] >= 0.5,
        "duplicates_per_second": spread([r["resend"]["duplicates_per_second"] for r in repeats]),
        "dedup_rate": spread([r["resend"]["dedup_rate"] for r in repeats], 4),
        "rows_doubled": sum(r["resend"]["rows_doubled"] for r in repeats),
        "lost_rows": sum(r["ingest"]["lost_rows"] for r in repeats),
        "throttles": sum(r["ingest"]["throttles"] + r["resend"]["throttles"] for r in repeats),
    }


def _cell(values: dict[str, float], digits: int = 0) -> str:
    return f"{values['median']:.{digits}f} ({values['min']:.{digits}f}-{values['max']:.{digits}f})"


def table(results: dict[str, Any]) -> str:
    repeats = results["repeats"]
    summary = results["summary"]
    rows_per_repeat = repeats[0]["ingest"]["rows"]

    def seconds(values: list[float]) -> str:
        return _cell(spread(values, 3), 2)

    header = ("path", "rows per repeat", "seconds", "rows/s median (min-max)", "gateway / this")
    rows: list[tuple[str, ...]] = [
        header,
        (
            "gateway: stream, commit (dedup, zone lock, merge), ack",
            str(rows_per_repeat),
            seconds([r["ingest"]["seconds"] for r in repeats]),
            _cell(summary["gateway_rows_per_second"]),
            "-",
        ),
        (
            "raw COPY, plain tables (LIKE, no keys/indexes)",
            str(repeats[0]["copy"]["plain"]["rows"]),
            seconds([r["copy"]["plain"]["seconds"] for r in repeats]),
            _cell(summary["copy_plain_rows_per_second"]),
            _cell(summary["ratio_to_copy_plain"], 2),
        ),
        (
            "raw COPY, same keys and indexes (LIKE INCLUDING ALL)",
            str(repeats[0]["copy"]["indexed"]["rows"]),
            seconds([r["copy"]["indexed"]["seconds"] for r in repeats]),
            _cell(summary["copy_indexed_rows_per_second"]),
            _cell(summary["ratio_to_copy_indexed"], 2),
        ),
    ]
    settings = results["settings"]
    written = repeats[0]["ingest"]["written"]
    lines = [
        markdown_table(rows),
        f"{settings['collectors']} collectors x {settings['batches_per_collector']} batches x "
        f"{settings['devices_per_batch']} devices, window {settings['window']}, zones {settings['zones']}, "
        f"{settings['transport']}; {len(repeats)} repeats. Rows per repeat: {written['devices']} devices + "
        f"{written['device_ports']} ports + {written['device_changes']} history "
        f"(+ {written['ingested_batches']} batch identities, not counted).",
        f"Gateway: {_cell(summary['gateway_devices_per_second'])} devices/s, "
        f"{_cell(summary['gateway_batches_per_second'], 1)} batches/s. "
        f"Goal >= 50% of raw COPY into tables with the same keys: "
        f"{'met' if summary['goal_half_of_copy_met'] else 'NOT met'} "
        f"(median {summary['ratio_to_copy_indexed']['median']:.0%}; by CPU per row "
        + (
            f"{summary['cpu_ratio_to_copy_indexed']['median']:.0%})."
            if summary.get("cpu_ratio_to_copy_indexed")
            else "unknown)."
        )
        + f" Load (1 min) at the end of each repeat: {[r.get('loadavg_1min_at_end') for r in repeats]}.",
        f"Resend of every batch: dedup rate {_cell(summary['dedup_rate'], 4)}, rows doubled "
        f"{summary['rows_doubled']}, duplicates acked/s {_cell(summary['duplicates_per_second'])}. "
        f"Rows lost: {summary['lost_rows']}. Throttles: {summary['throttles']}.",
    ]
    cpu = repeats[-1]["ingest"]["cpu_seconds"]
    lines.append(
        "CPU seconds, last repeat's ingest: " + ", ".join(f"{name} {value:.2f}" for name, value in cpu.items())
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK} unless given explicitly")
    parser.add_argument("--collectors", type=int)
    parser.add_argument("--batches", type=int, help="batches per collector per repeat")
    parser.add_argument("--devices-per-batch", type=int)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--window", type=int, default=SEND_WINDOW, help="unacknowledged batches per collector")
    parser.add_argument("--zones", choices=("per-collector", "shared"), default="per-collector")
    parser.add_argument("--transport", choices=("grpc", "websocket", "tcp"), default="grpc")
    parser.add_argument("--phase-timeout", type=float, default=1800.0, help="seconds for one ingest or resend")
    parser.add_argument("--admin-dsn", default=os.environ.get("OUTPOST_TEST_POSTGRES_DSN", ADMIN_DSN))
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "ingest_vs_copy.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs); the database is dropped")
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.collectors, args.batches, args.devices_per_batch, args.repeats, args.window) < 1:
        parser.error("--collectors, --batches, --devices-per-batch, --repeats and --window must be positive")
    if args.collectors * args.batches * args.devices_per_batch * args.repeats > CAPACITY:
        parser.error(f"more than {CAPACITY} devices in all do not fit in 10.0.0.0/8")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # run the clean-up below on SIGTERM too
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-ingest-"))
    database = TempDatabase(args.admin_dsn)
    plane = Plane(workdir)
    started = time.monotonic()
    try:
        print(f"control plane in {workdir}, database {database.name}")
        results = asyncio.run(run(args, plane, database, workdir))
    finally:
        plane.stop()
        try:
            database.drop_blocking()
        finally:
            if args.keep:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    finish(results, table(results), args.json, started)


if __name__ == "__main__":
    main()
