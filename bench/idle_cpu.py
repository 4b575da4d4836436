"""Idle cost of the control plane on PostgreSQL: watches woken by LISTEN/NOTIFY vs polling.

    .venv/bin/python bench/idle_cpu.py [--window 30] [--replicas 1 3] [--json bench/results/idle_cpu.json]

Theory of operation
-------------------
For each wake-up mode (`--watch-wakeup poll`, the old way, is the baseline; `listen`
the default) and each replica count N, a fresh PostgreSQL database gets N registries, N
schedulers and N gateways as real processes (replica i of the scheduler and gateway
talk to replica i of the registry and scheduler), no collector, nothing to do. After
every process is ready and a settling pause (a condition: every PostgreSQL backend of
the database is idle in pg_stat_activity, or 10 s), the CPU time (user + system) of
(a) every PostgreSQL backend serving that database and (b) every Outpost process is
read twice, `--window` seconds apart. The figure is the difference as a percentage of
one core. Backends that appear or vanish inside the window are counted from when they
are seen (there should be none: pools keep their connections).

Baseline in the same run: the poll mode. Noise: two shared cores, other work on the
machine shows up in every row alike; repeat (`--repeats`) and read medians.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import psutil
from harness.control_plane import BIN, Child
from harness.credentials import Credentials
from harness.machine import finish, machine, markdown_table

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


async def backend_pids(database: str) -> list[int]:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        rows = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


async def all_idle(database: str) -> bool:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        busy = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state NOT IN ('idle') "
            "AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await connection.close()
    return int(busy) == 0


class Plane:
    """N replicas of each service on one PostgreSQL database, in `workdir`."""

    def __init__(self, workdir: Path, url: str, replicas: int, mode: str) -> None:
        self.workdir = workdir
        self.url = url
        self.replicas = replicas
        self.mode = mode
        self.children: list[Child] = []
        self.credentials = Credentials(workdir)

    def _start(self, name: str, args: list[str]) -> dict[str, Any]:
        ready = self.workdir / f"{name}.ready"
        child = Child(name, [*args, f"--ready-file={ready}"], self.workdir / f"{name}.log").start()
        self.children.append(child)
        return child.wait_ready(ready)

    def start(self) -> None:
        common = ["--metrics-listen=", f"--data-dir={self.workdir}", f"--database-url={self.url}", "--log-format=json"]
        registries = [
            self._start(
                f"registry-{i}",
                [
                    str(BIN / "outpost-registry"),
                    "--listen=127.0.0.1:0",
                    f"--watch-wakeup={self.mode}",
                    *common,
                    *self.credentials.registry_flags(),
                    f"--bootstrap-access-key-file={self.workdir / 'access.key'}",
                ],
            )
            for i in range(self.replicas)
        ]
        schedulers = [
            self._start(
                f"scheduler-{i}",
                [
                    str(BIN / "outpost-scheduler"),
                    "--listen=127.0.0.1:0",
                    f"--watch-wakeup={self.mode}",
                    f"--registry={registries[i]['grpc']}",
                    *common,
                    *self.credentials.scheduler_flags(),
                ],
            )
            for i in range(self.replicas)
        ]
        for i in range(self.replicas):
            self._start(
                f"gateway-{i}",
                [
                    str(BIN / "outpost-gateway"),
                    "--grpc-listen=127.0.0.1:0",
                    "--admin-listen=127.0.0.1:0",
                    "--ws-listen=127.0.0.1:0",
                    "--tcp-listen=127.0.0.1:0",
                    f"--registry={registries[i]['grpc']}",
                    f"--scheduler={schedulers[i]['grpc']}",
                    *common,
                    *self.credentials.gateway_flags(),
                ],
            )

    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


async def measure(replicas: int, mode: str, window: float) -> dict[str, Any]:
    database = f"outpost_bench_idle_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-idle-"))
    plane = Plane(workdir, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}", replicas, mode)
    try:
        plane.start()
        settle_until = time.monotonic() + 10
        while time.monotonic() < settle_until and not await all_idle(database):
            await asyncio.sleep(0.5)
        backends = await backend_pids(database)
        before_db = {pid: cpu_seconds(pid) for pid in backends}
        before_svc = {pid: cpu_seconds(pid) for pid in plane.pids()}
        await asyncio.sleep(window)  # the measurement window itself, not a wait for a condition
        after_db = {pid: cpu_seconds(pid) for pid in set(backends) | set(await backend_pids(database))}
        after_svc = {pid: cpu_seconds(pid) for pid in plane.pids()}
    finally:
        plane.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()

    def spent(before: dict[int, float | None], after: dict[int, float | None]) -> float:
        total = 0.0
        for pid, end in after.items():
            start = before.get(pid)
            if end is not None:
                total += end - (start if start is not None else end)
        return total

    db = spent(before_db, after_db)
    svc = spent(before_svc, after_svc)
    return {
        "mode": mode,
        "replicas": replicas,
        "window_seconds": window,
        "backends": len(after_db),
        "postgres_core_percent": round(100 * db / window, 3),
        "services_core_percent": round(100 * svc / window, 3),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines: list[tuple[str, ...]] = [
        ("wake-up", "replicas of each", "PostgreSQL backends", "PostgreSQL % of a core", "services % of a core")
    ]
    for row in rows:
        lines.append(
            (
                row["mode"],
                str(row["replicas"]),
                str(row["backends"]),
                f"{row['postgres_core_percent_median']:.2f} ({row['postgres_core_percent_min']:.2f}-"
                f"{row['postgres_core_percent_max']:.2f})",
                f"{row['services_core_percent_median']:.2f} ({row['services_core_percent_min']:.2f}-"
                f"{row['services_core_percent_max']:.2f})",
            )
        )
    return markdown_table(lines) + "\nmedian (min-max) over the repeats"


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for replicas in args.replicas:
        for mode in ("poll", "listen"):
            samples = [await measure(replicas, mode, args.window) for _ in range(args.repeats)]
            row: dict[str, Any] = {"mode": mode, "replicas": replicas, "backends": samples[-1]["backends"]}
            for key in ("postgres_core_percent", "services_core_percent"):
                values = [s[key] for s in samples]
                row[f"{key}_median"] = statistics.median(values)
                row[f"{key}_min"] = min(values)
                row[f"{key}_max"] = max(values)
            row["samples"] = samples
            rows.append(row)
            print(
                f"{mode:6} x{replicas}: PostgreSQL {row['postgres_core_percent_median']:.2f}% "
                f"services {row['services_core_percent_median']:.2f}%"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "idle_cpu.json")
    args = parser.parse_args()
    started = time.monotonic()
    rows = asyncio.run(run(args))
    results = {"machine": machine(), "rows": rows}
    finish(results, table(rows), args.json, started)


if __name__ == "__main__":
    main()
