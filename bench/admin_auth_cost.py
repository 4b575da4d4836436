"""What authentication costs an admin call: latency with a token beside calls without one, same run.

    .venv/bin/python bench/admin_auth_cost.py [--calls 2000] [--rounds 4]
        [--json bench/results/admin_auth_cost.json]

Theory of operation
-------------------
Since issue 9 every registry and scheduler RPC, and every RPC on the gateway's admin
listener, passes `outpost.auth.interceptor.AuthInterceptor`: the bearer secret is
hashed (SHA-256) and turned into a principal, then the method's rule is checked.
Where the principal comes from is what differs:

- a service identity: compared with the configured peer digests, in memory;
- an admin token at the registry: its digest looked up in the registry's token table;
- an admin token at the scheduler or a gateway: one `AuthenticateToken` call to the
  registry (which looks it up), no cache, so a revocation holds from the next call.

Services have no switch that turns authentication off, so "without" is measured on the
same listeners with the public health check (`grpc.health.v1.Health/Check`: the
interceptor finds a PUBLIC rule and reads no token), and below everything a plain
`grpc.aio` server with one raw-bytes echo method and no interceptor at all
(`harness/bare_servers.py`, a child process). GetServerInfo on the registry runs the
same handler with two credentials (the gateway's identity, then an admin token), which
isolates the token lookup.

A registry, scheduler and gateway run as real processes (SQLite in a temp dir, nothing
registered: every List returns empty, so a List is the interceptor plus one trivial
handler). This process calls each row's RPC sequentially, one call in flight, over a
channel opened and warmed before timing (`WARM_UP` calls). To spread drift in a shared
machine's load evenly over the rows, the `--calls` of each row are made in `--rounds`
rounds, every row taking its turn in each round. Reported per row: p50, p99 and mean
latency in ms, calls/s (one in flight: 1 / mean), and the p50 above the health check of
the same listener. The client's bearer interceptor (Python, per call) is in the figures
of the rows with a credential, as it is in every real client's.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness.bare_servers import GRPC_ECHO_METHOD
from harness.control_plane import Child, ControlPlane
from harness.credentials import authorized_channel
from harness.machine import finish, machine, markdown_table

from outpost.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpost.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
BARE_SERVERS = Path(__file__).parent / "harness" / "bare_servers.py"
WARM_UP = 200
MAX_CALLS = 100_000
CALL_TIMEOUT = 10.0


@dataclass
class Row:
    """One RPC on one listener with one credential, called `calls` times one at a time."""

    name: str
    listener: str
    credential: str
    server_work: str
    call: Callable[[], Awaitable[Any]]
    baseline: str | None = None  # the row whose p50 this one is compared with
    seconds: list[float] | None = None

    def figures(self) -> dict[str, Any]:
        assert self.seconds
        ms = sorted(s * 1000 for s in self.seconds)
        mean = statistics.fmean(ms)
        return {
            "name": self.name,
            "listener": self.listener,
            "credential": self.credential,
            "server_work": self.server_work,
            "baseline": self.baseline,
            "calls": len(ms),
            "p50_ms": round(percentile(ms, 50), 3),
            "p99_ms": round(percentile(ms, 99), 3),
            "mean_ms": round(mean, 3),
            "calls_per_second": round(1000 / mean, 1),
        }


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def timed(row: Row, count: int) -> None:
    assert row.seconds is not None
    clock = time.perf_counter
    for _ in range(count):
        started = clock()
        await row.call()
        row.seconds.append(clock() - started)


def rows_for(bare: grpc.aio.Channel, channels: dict[str, grpc.aio.Channel]) -> list[Row]:
    def health(channel: grpc.aio.Channel) -> Callable[[], Awaitable[Any]]:
        stub = health_pb2_grpc.HealthStub(channel)
        return lambda: stub.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)

    echo = bare.unary_unary(GRPC_ECHO_METHOD, request_serializer=None, response_deserializer=None)
    registry_as_gateway = registry_pb2_grpc.RegistryServiceStub(channels["registry gateway"])
    registry_as_admin = registry_pb2_grpc.RegistryServiceStub(channels["registry admin"])
    scheduler = scheduler_pb2_grpc.SchedulerServiceStub(channels["scheduler admin"])
    gateway = gateway_pb2_grpc.GatewayServiceStub(channels["gateway admin"])
    lookup = "token digest looked up in the registry's table"
    remote = "AuthenticateToken to the registry (one round trip + its lookup)"
    return [
        Row("bare grpc.aio echo", "bare server", "none", "no interceptor, returns the request", lambda: echo(b"x")),
        Row("registry Health/Check", "registry", "none", "public rule, no token read", health(channels["registry"])),
        Row(
            "registry GetServerInfo",
            "registry",
            "gateway identity",
            "peer digest compared in memory",
            lambda: registry_as_gateway.GetServerInfo(registry_pb2.GetServerInfoRequest(), timeout=CALL_TIMEOUT),
            baseline="registry Health/Check",
        ),
        Row(
            "registry GetServerInfo",
            "registry",
            "admin token",
            lookup,
            lambda: registry_as_admin.GetServerInfo(registry_pb2.GetServerInfoRequest(), timeout=CALL_TIMEOUT),
            baseline="registry Health/Check",
        ),
        Row(
            "registry ListCollectors",
            "registry",
            "admin token",
            f"{lookup}; an empty list",
            lambda: registry_as_admin.ListCollectors(registry_pb2.ListCollectorsRequest(), timeout=CALL_TIMEOUT),
            baseline="registry Health/Check",
        ),
        Row("scheduler Health/Check", "scheduler", "none", "public rule, no token read", health(channels["scheduler"])),
        Row(
            "scheduler ListDiscoveries",
            "scheduler",
            "admin token",
            f"{remote}; an empty list",
            lambda: scheduler.ListDiscoveries(scheduler_pb2.ListDiscoveriesRequest(), timeout=CALL_TIMEOUT),
            baseline="scheduler Health/Check",
        ),
        Row(
            "gateway admin Health/Check",
            "gateway admin",
            "none",
            "public rule, no token read",
            health(channels["gateway"]),
        ),
        Row(
            "gateway admin ListSessions",
            "gateway admin",
            "admin token",
            f"{remote}; no sessions",
            lambda: gateway.ListSessions(gateway_pb2.ListSessionsRequest(), timeout=CALL_TIMEOUT),
            baseline="gateway admin Health/Check",
        ),
    ]


async def measure(plane: ControlPlane, bare_port: int, calls: int, rounds: int) -> list[dict[str, Any]]:
    admin = plane.credentials.admin_token
    registry = plane.registry_ready["grpc"]
    scheduler = plane.scheduler_ready["grpc"]
    gateway = plane.gateway_ready["admin"]
    channels = {
        "registry": grpc.aio.insecure_channel(registry),
        "registry gateway": authorized_channel(registry, plane.credentials.gateway_secret),
        "registry admin": authorized_channel(registry, admin),
        "scheduler": grpc.aio.insecure_channel(scheduler),
        "scheduler admin": authorized_channel(scheduler, admin),
        "gateway": grpc.aio.insecure_channel(gateway),
        "gateway admin": authorized_channel(gateway, admin),
    }
    bare = grpc.aio.insecure_channel(f"127.0.0.1:{bare_port}")
    try:
        rows = rows_for(bare, channels)
        for row in rows:
            row.seconds = []
            await timed(row, WARM_UP)
            row.seconds = []
        per_round = [calls // rounds + (1 if i < calls % rounds else 0) for i in range(rounds)]
        for number, count in enumerate(per_round, 1):
            print(f"round {number}/{rounds}: {count} calls per row")
            for row in rows:
                await timed(row, count)
        return [row.figures() for row in rows]
    finally:
        for channel in [bare, *channels.values()]:
            await channel.close()


async def run(calls: int, rounds: int, workdir: Path) -> dict[str, Any]:
    plane = ControlPlane(workdir)
    bare: Child | None = None
    results: dict[str, Any] = {
        "figure": "admin_auth_cost",
        "machine": machine(),
        "settings": {
            "calls_per_row": calls,
            "rounds": rounds,
            "warm_up_calls_per_row": WARM_UP,
            "in_flight": 1,
            "database": "SQLite, each service its own file, nothing registered",
            "baseline": "Health/Check (public, no token) on the same listener; a plain grpc.aio echo server",
        },
    }
    try:
        ready = workdir / "bare-grpc.ready"
        bare = Child(
            "bare grpc", [sys.executable, str(BARE_SERVERS), "grpc", f"--ready-file={ready}"], workdir / "bare-grpc.log"
        )
        bare.start()
        bare_port = int(bare.wait_ready(ready)["port"])
        plane.start_registry()
        plane.start_gateway()
        results["rows"] = await measure(plane, bare_port, calls, rounds)
    finally:
        plane.stop()
        if bare is not None:
            bare.stop()
    return results


def table(results: dict[str, Any]) -> str:
    by_name = {row["name"]: row for row in results["rows"] if row["credential"] == "none"}
    rows = [("RPC", "listener", "credential", "server does", "p50 ms", "p99 ms", "calls/s", "p50 above health")]
    for row in results["rows"]:
        base = by_name.get(row["baseline"]) if row["baseline"] else None
        extra = f"+{row['p50_ms'] - base['p50_ms']:.2f} ms ({row['p50_ms'] / base['p50_ms']:.2f}x)" if base else ""
        rows.append(
            (
                row["name"],
                row["listener"],
                row["credential"],
                row["server_work"],
                f"{row['p50_ms']:.2f}",
                f"{row['p99_ms']:.2f}",
                f"{row['calls_per_second']:.0f}",
                extra,
            )
        )
    return markdown_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per row (bounded)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds the calls of every row are spread over")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "admin_auth_cost.json")
    args = parser.parse_args()
    if not 1 <= args.calls <= MAX_CALLS or not 1 <= args.rounds <= args.calls:
        parser.error(f"--calls takes 1..{MAX_CALLS} and --rounds 1..calls")
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-"))
    started = time.monotonic()
    try:
        results = asyncio.run(run(args.calls, args.rounds, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finish(results, table(results), args.json, started)


if __name__ == "__main__":
    main()
