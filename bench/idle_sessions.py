"""Idle sessions: gateway memory per session and handshake-to-live time, beside bare transports.

    .venv/bin/python bench/idle_sessions.py [--collectors 1000] [--transports grpc,websocket,tcp]
        [--json bench/results/idle_sessions.json]

Theory of operation
-------------------
A registry (SQLite in a temp dir) and a gateway run as real processes; this process is
the load generator, so psutil weighs the gateway pid alone. The collectors are
`harness.idle_collector.IdleCollector`s: the real `CollectorSession` over the real collector
transports, each with its own Ed25519 key and instance uid and its own password
verifier bound to that key (ADR 0013), at the cheapest argon2id cost the registry accepts.

1. Announce: every collector connects once (transports taken in turn, 25 at a time,
   retrying a refused handshake like a real collector) and waits in PENDING, as an
   unregistered collector does.
2. Register: `RegistryService.RegisterCollector(enable=true)` for each, a few at a time.
   The registry runs argon2 verify per call, so the verifiers are deliberately cheap
   (t=1, m=8 KiB, p=1) to keep this phase short; they have no part in the figures.
   Connected collectors go live through the gateway's registry watch; then all close.
3. Per transport, on a fresh gateway: 20 collectors connect one at a time and leave
   (warming up code that runs once per process; their handshake-to-live is the
   unloaded figure); the gateway's RSS settles with 0 sessions; then all N connect,
   `--in-flight` handshakes at a time, and stay idle (heartbeats every 30 s, the
   registry default). Handshake-to-live is per collector, from opening the transport
   to the core entering ENABLED (the Welcome). RSS settles again; per-session cost =
   (RSS with N - RSS with 0) / N. A fresh gateway, because one that held N sessions
   keeps most of that memory after they close (`rss_after_close_bytes` in the JSON):
   its RSS with 0 would hide the cost.

Every bench collector gets its own TCP connection, as separate collector processes do
(grpc would otherwise multiplex all channels to one target over one connection).

Bare transports are measured the same way in the same run: each bare server
(`harness/bare_servers.py`) is a child process, the N idle clients live here.

Nothing here asserts; it prints a table and writes JSON (raw figures, machine, date).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from harness.bare_servers import BARE_CLIENTS, OWN_CONNECTION, Close
from harness.connections import close_all, connect_all
from harness.control_plane import Child, ControlPlane, settled_rss
from harness.enroll import PASSWORD, USERNAME, register_all
from harness.idle_collector import CollectorIdentity, IdleCollector, sealing
from harness.machine import finish, machine, markdown_table, raise_fd_limit
from harness.traced_gateway import SNAPSHOT_ENV, growth, take_snapshot

from outpost.session.collector import CollectorState
from services.collector.domain.server_url import parse_server_url
from services.collector.transport import grpc_stream
from services.collector.transport.sealed import SealedSessions

TRANSPORTS = ("grpc", "websocket", "tcp")
BARE_FOR = {"grpc": "grpc", "websocket": "websocket", "tcp": "tcp"}
EXTRA_BARE = ("aiohttp",)  # the gateway's WebSocket stack, to tell library cost from session cost
WARM_UP = 20
CONNECT_TIMEOUT = 120.0
# Announcing creates a row per collector, the registry's slowest handshake; more at once
# than it clears within the gateway's 5 s registry deadline only measures refusals.
ANNOUNCE_IN_FLIGHT = 25
ANNOUNCE_ATTEMPTS = 3
REPO = Path(__file__).resolve().parent.parent
BARE_SERVERS = Path(__file__).parent / "harness" / "bare_servers.py"
TRACED_GATEWAY = Path(__file__).parent / "harness" / "traced_gateway.py"

# Each collector is its own process in production, with its own TCP connection; grpc
# shares one connection between channels to the same target unless told not to.
grpc_stream.CHANNEL_OPTIONS = [*grpc_stream.CHANNEL_OPTIONS, OWN_CONNECTION]


def sealing_of(plane: ControlPlane) -> SealedSessions | None:
    """Sealed when the gateway under measurement requires it (an older one compared may not)."""
    return sealing(plane.access_key_file) if plane.gateway_seals() else None


def _kib(value: float) -> float:
    return round(value / 1024, 2)


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


# --- phases 1 and 2: announce and register ----------------------------------------------
async def announce_and_register(
    plane: ControlPlane, identities: list[CollectorIdentity], transports: Sequence[str], verifier: str, in_flight: int
) -> dict[str, Any]:
    """Every collector connects once and waits pending; an admin registers+enables them all."""
    collectors = [
        IdleCollector(identity, identity.hello(USERNAME, verifier), sealing_of(plane), password=verifier)
        for identity in identities
    ]
    urls = {t: parse_server_url(plane.url(t)) for t in transports}
    loop = asyncio.get_running_loop()

    retries = 0

    async def announce(i: int) -> tuple[float, float]:
        # A real collector retries a refused handshake after a backoff; so does this one.
        nonlocal retries
        for attempt in range(ANNOUNCE_ATTEMPTS):
            collector = collectors[i] = IdleCollector(
                identities[i], identities[i].hello(USERNAME, verifier), sealing_of(plane), password=verifier
            )
            try:
                await collector.connect(urls[transports[i % len(transports)]], CollectorState.PENDING, CONNECT_TIMEOUT)
            except RuntimeError:
                await collector.close()
                if attempt + 1 == ANNOUNCE_ATTEMPTS:
                    raise
                retries += 1
                await asyncio.sleep(1.0)
            else:
                break
        return collector.opened_at, loop.time()

    try:
        announced = await connect_all(len(collectors), min(in_flight, ANNOUNCE_IN_FLIGHT), announce)
        print(f"  announced {len(announced.durations)} pending in {announced.seconds:.1f}s ({retries} retries)")
        if announced.failures:
            raise RuntimeError(f"{len(announced.failures)} collectors could not announce: {announced.failures[:3]}")
        started = loop.time()
        await register_all(
            plane.registry_ready["grpc"], plane.credentials.admin_token, [c.identity.name for c in collectors]
        )
        registered = loop.time() - started
        await asyncio.gather(*(c.wait_for(CollectorState.ENABLED, CONNECT_TIMEOUT) for c in collectors))
        live = loop.time() - started
        print(f"  registered {len(collectors)} in {registered:.1f}s, all live on their sessions after {live:.1f}s")
    finally:
        await close_all(c.close for c in collectors)
    return {
        "announce": announced.summary(),
        "announce_retries": retries,
        "register_seconds": round(registered, 2),
        "live_seconds": round(live, 2),
    }


# --- phase 3: idle sessions on one transport --------------------------------------------
async def measure_outpost(
    plane: ControlPlane,
    transport: str,
    identities: list[CollectorIdentity],
    verifier: str,
    in_flight: int,
    snapshot: Path | None = None,
) -> dict[str, Any]:
    """Fresh gateway, warm up, RSS with 0, N collectors live and idle, RSS with N."""
    plane.start_gateway()
    gateway = plane.gateway
    assert gateway is not None and plane.registry is not None
    url = parse_server_url(plane.url(transport))
    loop = asyncio.get_running_loop()
    collectors: list[IdleCollector] = []

    def check() -> None:
        if not gateway.alive():
            raise RuntimeError(f"gateway died:\n{gateway.log_tail()}")

    async def go_live(identity: CollectorIdentity) -> tuple[float, float]:
        collector = IdleCollector(identity, identity.hello(USERNAME, verifier), sealing_of(plane), password=verifier)
        collectors.append(collector)
        await collector.connect(url, CollectorState.ENABLED, CONNECT_TIMEOUT)
        assert collector.live_at is not None
        return collector.opened_at, collector.live_at

    traced: dict[str, Any] = {}
    try:
        # Warm-up doubles as the unloaded figure: one handshake at a time.
        alone = await connect_all(min(WARM_UP, len(identities)), 1, lambda i: go_live(identities[i]))
        await close_all(c.close for c in collectors)
        collectors.clear()
        if alone.failures:
            raise RuntimeError(f"warm-up failed on {transport}: {alone.failures[:3]}")
        empty = await settled_rss(gateway.pid, check=check)
        before = await take_snapshot(gateway.pid, snapshot) if snapshot else None
        cpu_before = _cpu_seconds(gateway.pid), _cpu_seconds(plane.registry.pid)
        load = os.getloadavg()[0]
        run = await connect_all(len(identities), in_flight, lambda i: go_live(identities[i]))
        cpu_after = _cpu_seconds(gateway.pid), _cpu_seconds(plane.registry.pid)
        full = await settled_rss(gateway.pid, check=check)
        live = sum(1 for c in collectors if c.state is CollectorState.ENABLED)
        connections = sum(1 for c in psutil.Process(gateway.pid).net_connections("tcp") if c.status == "ESTABLISHED")
        if before is not None and live:
            traced = growth(before, await take_snapshot(gateway.pid, snapshot), live)
        started = loop.time()
        await close_all(c.close for c in collectors)
        close_seconds = loop.time() - started
        # What a "close all, then measure 0" baseline would have started from.
        after_close = await settled_rss(gateway.pid, check=check)
    finally:
        await close_all(c.close for c in collectors)
        plane.stop_gateway()
    per_session = (full.rss - empty.rss) / live if live else 0.0
    return {
        "transport": transport,
        "sessions_live": live,
        "gateway_established_tcp": connections,
        "loadavg_1min_at_start": round(load, 2),
        "rss_empty_bytes": empty.rss,
        "rss_full_bytes": full.rss,
        "rss_after_close_bytes": after_close.rss,
        "rss_settled": [empty.settled, full.settled, after_close.settled],
        "rss_settle_seconds": [round(empty.seconds, 1), round(full.seconds, 1), round(after_close.seconds, 1)],
        "kib_per_session": _kib(per_session),
        "handshake_to_live": run.summary(),
        "handshake_to_live_one_at_a_time": alone.summary(),
        "gateway_cpu_ms_per_handshake": round((cpu_after[0] - cpu_before[0]) * 1000 / max(1, len(run.durations)), 3),
        "registry_cpu_ms_per_handshake": round((cpu_after[1] - cpu_before[1]) * 1000 / max(1, len(run.durations)), 3),
        "close_seconds": round(close_seconds, 2),
        **({"tracemalloc": traced} if traced else {}),
    }


async def measure_bare(kind: str, count: int, in_flight: int, workdir: Path) -> dict[str, Any]:
    """One bare server as a child process, N idle clients from here; same RSS method."""
    ready = workdir / f"bare-{kind}.ready"
    server = Child(
        f"bare {kind}",
        [sys.executable, str(BARE_SERVERS), kind, f"--ready-file={ready}"],
        workdir / f"bare-{kind}.log",
    ).start()
    closers: list[Close] = []
    loop = asyncio.get_running_loop()

    def check() -> None:
        if not server.alive():
            raise RuntimeError(f"bare {kind} server died:\n{server.log_tail()}")

    async def open_one(_: int) -> tuple[float, float]:
        opened = loop.time()
        closers.append(await BARE_CLIENTS[kind](port))
        return opened, loop.time()

    try:
        port = int(server.wait_ready(ready)["port"])
        await connect_all(min(WARM_UP, count), in_flight, open_one)
        await close_all(closers)
        closers.clear()
        empty = await settled_rss(server.pid, check=check)
        load = os.getloadavg()[0]
        run = await connect_all(count, in_flight, open_one)
        full = await settled_rss(server.pid, check=check)
        connected = len(closers)
    finally:
        await close_all(closers)
        server.stop()
    return {
        "kind": kind,
        "connections": connected,
        "loadavg_1min_at_start": round(load, 2),
        "rss_empty_bytes": empty.rss,
        "rss_full_bytes": full.rss,
        "rss_settled": [empty.settled, full.settled],
        "kib_per_connection": _kib((full.rss - empty.rss) / connected) if connected else None,
        "connect": run.summary(),
    }


# --- the run ------------------------------------------------------------------------------
async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    unknown = set(transports) - set(TRANSPORTS)
    if unknown:
        raise SystemExit(f"unknown transports {sorted(unknown)}; choose from {', '.join(TRANSPORTS)}")
    fds = raise_fd_limit()
    results: dict[str, Any] = {
        "figure": "idle_sessions",
        "machine": machine(),
        "settings": {
            "collectors": args.collectors,
            "transports": transports,
            "in_flight": args.in_flight,
            "heartbeat_interval_seconds": 30,
            "warm_up_connections": WARM_UP,
            "fd_limit": list(fds),
            "verifier": "argon2id t=1 m=8 p=1, one per collector, bound to its key",
        },
    }
    verifier = PASSWORD  # hello() binds it to each key (ADR 0013)
    identities = [CollectorIdentity.generate(f"bench-{i:05d}") for i in range(args.collectors)]
    plane = ControlPlane(workdir, heartbeat_interval=30)
    snapshot = workdir / "gateway.snapshot" if args.tracemalloc else None
    if snapshot is not None:
        plane.gateway_command = [sys.executable, str(TRACED_GATEWAY)]
        plane.gateway_env = {SNAPSHOT_ENV: str(snapshot)}
        results["settings"]["tracemalloc"] = "gateway traced: its RSS and timings are inflated, do not quote them"
    try:
        plane.start_registry()
        plane.start_gateway()
        print(f"phase 1+2: {args.collectors} collectors announce, then are registered")
        results["enrollment"] = await announce_and_register(plane, identities, transports, verifier, args.in_flight)
        plane.stop_gateway()
        results["outpost"] = {}
        for transport in transports:
            print(f"phase 3: {args.collectors} idle sessions over {transport}")
            results["outpost"][transport] = await measure_outpost(
                plane, transport, identities, verifier, args.in_flight, snapshot
            )
        results["bare"] = {}
        if snapshot is not None:
            return results
        for kind in [*(BARE_FOR[t] for t in transports), *EXTRA_BARE]:
            print(f"bare: {args.collectors} idle {kind} connections")
            results["bare"][kind] = await measure_bare(kind, args.collectors, args.in_flight, workdir)
    finally:
        plane.stop()
    return results


def table(results: dict[str, Any]) -> str:
    """The figure as a Markdown table, one row per transport."""
    header = (
        "transport",
        "Outpost KiB/session",
        "bare KiB/conn",
        "ratio",
        "h2l median ms",
        "h2l p99 ms",
        "handshakes/s peak",
        "h2l alone ms",
    )
    rows = [header]
    for transport, outpost in results["outpost"].items():
        bare = results["bare"][BARE_FOR[transport]]["kib_per_connection"]
        ours = outpost["kib_per_session"]
        h2l = outpost["handshake_to_live"]
        rows.append(
            (
                transport,
                f"{ours:.1f}",
                f"{bare:.1f}",
                f"{ours / bare:.2f}x" if bare else "-",
                f"{h2l['median_ms']:.0f}",
                f"{h2l['p99_ms']:.0f}",
                str(h2l["peak_per_second"]),
                f"{outpost['handshake_to_live_one_at_a_time']['median_ms']:.1f}",
            )
        )
    extra = [f"bare {kind}: {results['bare'][kind]['kib_per_connection']:.1f} KiB/conn" for kind in EXTRA_BARE]
    return "\n".join([markdown_table(rows), *extra])


def traced_table(results: dict[str, Any]) -> str:
    """Under --tracemalloc: the Python-heap growth per session and where it was allocated."""
    out = []
    for transport, outpost in results["outpost"].items():
        traced = outpost["tracemalloc"]
        out.append(f"{transport}: traced {traced['traced_bytes_per_session']} B/session of Python heap")
        out += [f"  {line['bytes_per_session']:>6} B  {line['where']}" for line in traced["by_outpost_line"]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collectors", type=int, default=1000)
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--in-flight", type=int, default=100, help="handshakes in progress at once")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "idle_sessions.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="diagnosis only: trace the gateway's Python heap, report where session memory goes, skip the bare runs",
    )
    args = parser.parse_args()
    if args.collectors < 1 or args.in_flight < 1:
        parser.error("--collectors and --in-flight must be positive")
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-"))
    started = time.monotonic()
    try:
        results = asyncio.run(run(args, workdir))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    finish(results, traced_table(results) if args.tracemalloc else table(results), args.json, started)


if __name__ == "__main__":
    main()
