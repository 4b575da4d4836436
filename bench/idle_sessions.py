"""Idle sessions: gateway memory per session and handshake-to-live time, beside bare transports.

    .venv/bin/python bench/idle_sessions.py [--collectors 1000,3000,10000] [--transports grpc,websocket,tcp]
        [--generator-processes 2] [--json bench/results/idle_sessions.json] [--plot OUT.png]
        [--keep] [--enrolled KEPT_TEMP_DIR]

Theory of operation
-------------------
A registry (SQLite in a temp dir) and a gateway run as real processes. The load generator
is K more (`--generator-processes`, `harness/idle_generator.py`): each holds its share of
the collectors (and of the bare clients) and reports back over a pipe when its share is
live and when it has closed, so the generator's event loops spread over the cores instead
of one process sharing a core with the gateway unevenly. This process only orchestrates
and weighs the gateway (or bare server) pid with psutil. The collectors are
`harness.idle_collector.IdleCollector`s: the real `CollectorSession` over the real collector
transports, each with its own Ed25519 key and instance uid and its own password verifier
bound to that key (ADR 0013), at the cheapest argon2id cost the registry accepts.

1. Enrollment, once, for the largest `--collectors` count; every size and transport then
   reuses these identities (written to a file in the temp dir that every generator
   reads). Announce: every collector connects once (transports taken in turn,
   `--announce-in-flight` at a time over all generators, retrying a refused handshake
   after 1-3 s like a real collector) and waits in PENDING, as an unregistered collector
   does; in chunks of `--enroll-chunk`, because the registry reads every pending row at
   each first contact (thousands pending at once slowed newcomers to ~2/s here), with
   the registry's `--max-pending` and `--max-pending-per-network` raised to the chunk
   (defaults 1,000 and 100: all bench collectors share 127.0.0.1). This gateway alone
   runs with `ENROLLMENT_GATEWAY_ARGS` (more first contacts at once than the default 8).
   Register each chunk: `RegistryService.RegisterCollector(enable=true)`,
   `--register-in-flight` at a
   time. The registry runs argon2 verify per call, so the verifiers are deliberately cheap
   (t=1, m=8 KiB, p=1). Connected collectors go live through the gateway's registry
   watch; then all close. None of it is measured. `--enrolled DIR` skips it, reusing the
   registry database and identities of a temp dir an earlier run kept (`--keep`).
2. Per size and transport, on a fresh gateway: 20 collectors connect one at a time and
   leave (warming up code that runs once per process; their handshake-to-live is the
   unloaded figure); the gateway's RSS settles with 0 sessions; then N connect,
   `--in-flight` handshakes at a time (split between the generators), and stay idle
   (heartbeats every 30 s, the registry default). Handshake-to-live is per collector, from
   opening the transport to the core entering ENABLED (the Welcome); a refused handshake
   is retried after 1-3 s, as a collector would (`MEASURE_ATTEMPTS`), counted from the
   first attempt. RSS settles again;
   per-session cost = (RSS with N - RSS with 0) / N. A fresh gateway, because one that
   held N sessions keeps most of that memory after they close (`rss_after_close_bytes` in
   the JSON): its RSS with 0 would hide the cost.
3. Bare transports the same way, per size: each bare server (`harness/bare_servers.py`)
   is a child process, its N idle clients are spread over the generators.

Every bench collector gets its own TCP connection, as separate collector processes do
(grpc would otherwise multiplex all channels to one target over one connection).

Limits (none silent): file descriptors are raised to `FD_LIMIT` in this process before
anything is spawned, so the registry, gateway, bare servers and generators inherit it (the
hard limit too where the bench runs as root; the JSON records what it got). Every
connection comes from 127.0.0.1: the gateway has no per-address cap on sessions, only on
failed handshakes (`--max-failed-handshakes-per-address`, charged for bad proofs and
refusals, never for UNAVAILABLE) and on handshakes in progress at once
(`--max-unauthenticated`, raised here to `--in-flight` if that is higher). 10,000
connections fit loopback's ephemeral ports (32768-60999) from one source address, and a
fresh gateway per measurement listens on a fresh port, so TIME_WAIT from the previous
size never collides.

Nothing here asserts; it prints a table and writes JSON (raw figures, machine, date);
`--plot` draws KiB/session against sessions (`bench/idle_sessions_plot.py`).
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
from harness.control_plane import Child, ControlPlane, settled_rss
from harness.enroll import register_all
from harness.idle_collector import CollectorIdentity
from harness.idle_generator import Generators, merge, read_identities, shares, write_identities
from harness.machine import finish, machine, markdown_table, raise_fd_limit
from harness.traced_gateway import SNAPSHOT_ENV, growth, take_snapshot

from outpost.session.collector import CollectorState

TRANSPORTS = ("grpc", "websocket", "tcp")
BARE_FOR = {"grpc": "grpc", "websocket": "websocket", "tcp": "tcp"}
EXTRA_BARE = ("aiohttp",)  # the gateway's WebSocket stack, to tell library cost from session cost
WARM_UP = 20
CONNECT_TIMEOUT = 120.0
ANNOUNCE_ATTEMPTS = 10
MEASURE_ATTEMPTS = 10
"""A fresh gateway's lane for known collectors' registry calls (32 + 64 waiting) refuses
the rest with "retry in 2 s" while the registry is slow; a real collector retries, so
does a bench one, and its handshake-to-live counts from its first attempt."""
FD_LIMIT = 65536
ENROLLMENT_GATEWAY_ARGS = ["--max-first-contacts=32"]
"""For the enrollment gateway only; the measured gateways run with the defaults."""
GOAL_RATIO = 1.5
"""Issue 13 item 2: Outpost's own cost at most 0.5x the bare transport's, so 1.5x in total."""
REPO = Path(__file__).resolve().parent.parent
BARE_SERVERS = Path(__file__).parent / "harness" / "bare_servers.py"
TRACED_GATEWAY = Path(__file__).parent / "harness" / "traced_gateway.py"


def _kib(value: float) -> float:
    return round(value / 1024, 2)


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _access_key(plane: ControlPlane) -> str | None:
    """Sealed when the gateway under measurement requires it (an older one compared may not)."""
    return str(plane.access_key_file) if plane.gateway_seals() else None


# --- phase 1: announce and register -----------------------------------------------------------
async def announce_and_register(
    plane: ControlPlane,
    generators: Generators,
    identities: list[CollectorIdentity],
    transports: Sequence[str],
    args: argparse.Namespace,
) -> tuple[dict[str, Any], str]:
    """Chunk by chunk: every collector connects once and waits pending; an admin registers+enables them.

    In chunks of `--enroll-chunk` because the registry counts the pending collectors at
    every first contact (one read of up to `--max-pending` rows: thousands pending make
    each newcomer slower, ~2/s at 3,000 on this machine). Returns the figures and the
    server instance the collectors are now bound to.
    """
    count = len(identities)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answers: list[dict[str, Any]] = []
    retries = 0
    registered = 0.0
    instances: set[str] = set()
    for n, (lo, hi) in enumerate(shares(0, count, -(-count // args.enroll_chunk))):
        command = {
            "op": "collectors",
            "url": plane.url(transports[n % len(transports)]),
            "until": CollectorState.PENDING.value,
            "attempts": ANNOUNCE_ATTEMPTS,
            "access_key": _access_key(plane),
            "timeout": CONNECT_TIMEOUT,
        }
        chunk = await generators.split(lo, hi, args.announce_in_flight, command, plane_check(plane))
        answers += chunk
        retries += sum(a["retries"] for a in chunk)
        failures = [f for a in chunk for f in a["failures"]]
        if failures:
            raise RuntimeError(f"{len(failures)} collectors could not announce: {failures[:3]}")
        register_started = loop.time()
        await register_all(
            plane.registry_ready["grpc"],
            plane.credentials.admin_token,
            [identity.name for identity in identities[lo:hi]],
            in_flight=args.register_in_flight,
        )
        registered += loop.time() - register_started
        waited = await generators.all({"op": "wait", "until": CollectorState.ENABLED.value, "timeout": 300})
        failures = [f for w in waited for f in w["failures"]]
        if failures:
            raise RuntimeError(f"registered collectors did not go live: {failures[:3]}")
        instances.update(i for w in waited for i in w["server_instances"])
        await generators.all({"op": "close"})
        print(f"  {hi} enrolled after {loop.time() - started:.0f}s ({retries} retries)")
    announced = merge(answers)
    if len(instances) != 1:
        raise RuntimeError(f"collectors bound to {len(instances)} server instances: {sorted(instances)}")
    return {
        "collectors": count,
        "chunk": args.enroll_chunk,
        "announce": announced.summary(),
        "announce_retries": retries,
        "register_seconds": round(registered, 2),
        "register_in_flight": args.register_in_flight,
        "enrollment_seconds": round(loop.time() - started, 2),
    }, instances.pop()


def plane_check(plane: ControlPlane) -> Any:
    def check() -> None:
        for child in (plane.registry, plane.gateway):
            if child is not None and child.popen is not None and not child.alive():
                raise RuntimeError(f"{child.name} died:\n{child.log_tail()}")

    return check


# --- phase 2: idle sessions on one transport --------------------------------------------------
async def measure_outpost(
    plane: ControlPlane,
    generators: Generators,
    transport: str,
    count: int,
    bound: str,
    in_flight: int,
    snapshot: Path | None = None,
) -> dict[str, Any]:
    """Fresh gateway, warm up, RSS with 0, N collectors live and idle, RSS with N."""
    plane.start_gateway()
    gateway = plane.gateway
    assert gateway is not None and plane.registry is not None
    check = plane_check(plane)
    loop = asyncio.get_running_loop()
    command = {
        "op": "collectors",
        "url": plane.url(transport),
        "until": CollectorState.ENABLED.value,
        "attempts": MEASURE_ATTEMPTS,
        "access_key": _access_key(plane),
        "bound": bound,
        "timeout": CONNECT_TIMEOUT,
    }
    traced: dict[str, Any] = {}
    try:
        # Warm-up doubles as the unloaded figure: one handshake at a time, from one generator.
        warm = min(WARM_UP, count)
        alone = merge(await generators.ask([{**command, "start": 0, "stop": warm, "in_flight": 1}], check))
        await generators.all({"op": "close"}, check)
        if alone.failures:
            raise RuntimeError(f"warm-up failed on {transport}: {alone.failures[:3]}")
        empty = await settled_rss(gateway.pid, check=check)
        before = await take_snapshot(gateway.pid, snapshot) if snapshot else None
        cpu_before = _cpu_seconds(gateway.pid), _cpu_seconds(plane.registry.pid)
        load = os.getloadavg()[0]
        answers = await generators.split(0, count, in_flight, command, check)
        run = merge(answers)
        retries = sum(a["retries"] for a in answers)
        cpu_after = _cpu_seconds(gateway.pid), _cpu_seconds(plane.registry.pid)
        full = await settled_rss(gateway.pid, check=check)
        live = sum(s["live"] for s in await generators.all({"op": "status"}, check))
        connections = sum(1 for c in psutil.Process(gateway.pid).net_connections("tcp") if c.status == "ESTABLISHED")
        if before is not None and snapshot is not None and live:
            traced = growth(before, await take_snapshot(gateway.pid, snapshot), live)
        started = loop.time()
        await generators.all({"op": "close"}, check)
        close_seconds = loop.time() - started
        # What a "close all, then measure 0" baseline would have started from.
        after_close = await settled_rss(gateway.pid, check=check)
    finally:
        if gateway.alive():
            await generators.all({"op": "close"})
        plane.stop_gateway()
    per_session = (full.rss - empty.rss) / live if live else 0.0
    return {
        "transport": transport,
        "sessions": count,
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
        "handshake_retries": retries,
        "handshake_to_live_one_at_a_time": alone.summary(),
        "gateway_cpu_ms_per_handshake": round((cpu_after[0] - cpu_before[0]) * 1000 / max(1, len(run.durations)), 3),
        "registry_cpu_ms_per_handshake": round((cpu_after[1] - cpu_before[1]) * 1000 / max(1, len(run.durations)), 3),
        "close_seconds": round(close_seconds, 2),
        **({"tracemalloc": traced} if traced else {}),
    }


async def measure_bare(generators: Generators, kind: str, count: int, in_flight: int, workdir: Path) -> dict[str, Any]:
    """One bare server as a child process, N idle clients spread over the generators; same RSS method."""
    ready = workdir / f"bare-{kind}-{count}.ready"
    server = Child(
        f"bare {kind}",
        [sys.executable, str(BARE_SERVERS), kind, f"--ready-file={ready}"],
        workdir / f"bare-{kind}-{count}.log",
    ).start()

    def check() -> None:
        if not server.alive():
            raise RuntimeError(f"bare {kind} server died:\n{server.log_tail()}")

    def commands(n: int, budget: int) -> list[dict[str, Any] | None]:
        return [
            {"op": "bare", "kind": kind, "port": port, "count": hi - lo, "in_flight": max(1, budget * (hi - lo) // n)}
            if hi > lo
            else None
            for lo, hi in shares(0, n, generators.count)
        ]

    try:
        port = int(server.wait_ready(ready)["port"])
        await generators.ask(commands(min(WARM_UP, count), in_flight), check)
        await generators.all({"op": "close"}, check)
        empty = await settled_rss(server.pid, check=check)
        load = os.getloadavg()[0]
        run = merge(await generators.ask(commands(count, in_flight), check))
        full = await settled_rss(server.pid, check=check)
        connected = len(run.durations)
    finally:
        if server.alive():
            await generators.all({"op": "close"})
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
    sizes: list[int] = args.collectors
    largest = max(sizes)
    fds = raise_fd_limit(FD_LIMIT)  # before any child is spawned: they inherit it
    gateway_args = [f"--max-unauthenticated={args.in_flight}"] if args.in_flight > 1000 else []
    chunk = min(args.enroll_chunk, largest)
    registry_args = [f"--max-pending={max(1000, chunk)}", f"--max-pending-per-network={max(100, chunk)}"]
    extra_bare = [k.strip() for k in args.extra_bare.split(",") if k.strip()]
    results: dict[str, Any] = {
        "figure": "idle_sessions",
        "machine": machine(),
        "settings": {
            "collectors": sizes,
            "transports": transports,
            "in_flight": args.in_flight,
            "generator_processes": args.generator_processes,
            "announce_in_flight": args.announce_in_flight,
            "heartbeat_interval_seconds": 30,
            "warm_up_connections": WARM_UP,
            "fd_limit": list(fds),
            "gateway_args": gateway_args,
            "registry_args": registry_args,
            "enrollment_gateway_args": ENROLLMENT_GATEWAY_ARGS,
            "verifier": "argon2id t=1 m=8 p=1, one per collector, bound to its key",
        },
    }
    identities_file = workdir / "identities.json"
    if args.enrolled is not None:
        reuse_enrollment(args.enrolled, workdir, largest)
        identities = read_identities(identities_file)
        results["settings"]["enrolled_in"] = str(args.enrolled)
    else:
        identities = [CollectorIdentity.generate(f"bench-{i:05d}") for i in range(largest)]
        write_identities(identities_file, identities)
    plane = ControlPlane(workdir, heartbeat_interval=30, registry_args=registry_args, gateway_args=gateway_args)
    snapshot = workdir / "gateway.snapshot" if args.tracemalloc else None
    if snapshot is not None:
        plane.gateway_command = [sys.executable, str(TRACED_GATEWAY)]
        plane.gateway_env = {SNAPSHOT_ENV: str(snapshot)}
        results["settings"]["tracemalloc"] = "gateway traced: its RSS and timings are inflated, do not quote them"
    generators = Generators(args.generator_processes, identities_file, workdir)
    try:
        await generators.start()
        results["settings"]["generator_pids"] = generators.pids
        plane.start_registry()
        if args.enrolled is not None:
            bound = str(plane.registry_ready["server_instance"])
            print(f"phase 1: skipped, {largest} collectors enrolled in {args.enrolled}")
        else:
            # First contacts: the gateway's own bound on registry calls for them (default 8)
            # would pace 10,000 newcomers at ~8/s here; enrollment is not measured.
            plane.gateway_args = [*gateway_args, *ENROLLMENT_GATEWAY_ARGS]
            plane.start_gateway()
            print(f"phase 1: {largest} collectors announce, then are registered")
            results["enrollment"], bound = await announce_and_register(plane, generators, identities, transports, args)
            plane.stop_gateway()
            plane.gateway_args = gateway_args
        results["sizes"] = {}
        for count in sizes:
            figures: dict[str, Any] = {"outpost": {}, "bare": {}}
            results["sizes"][str(count)] = figures
            for transport in transports:
                print(f"phase 2: {count} idle sessions over {transport}")
                figures["outpost"][transport] = outpost = await measure_outpost(
                    plane, generators, transport, count, bound, args.in_flight, snapshot
                )
                print(f"  {outpost['sessions_live']} live, {outpost['kib_per_session']:.1f} KiB/session")
            if snapshot is not None:
                continue
            for kind in [*(BARE_FOR[t] for t in transports), *extra_bare]:
                print(f"bare: {count} idle {kind} connections")
                figures["bare"][kind] = bare = await measure_bare(generators, kind, count, args.in_flight, workdir)
                print(f"  {bare['connections']} connected, {bare['kib_per_connection']} KiB/conn")
    finally:
        await generators.stop()
        plane.stop()
    return results


ENROLLED_FILES = (
    "identities.json",
    *(f"{db}.db{suffix}" for db in ("registry", "scheduler") for suffix in ("", "-wal", "-shm")),
    "access.key",
    "admin.token",
    "registry-secret.key",
)


def reuse_enrollment(source: Path, workdir: Path, largest: int) -> None:
    """The registry and identities of an earlier run's kept temp dir (`--keep`): enrolled already.

    Enrollment is not measured; a second run (another commit's gateway, say) can skip it
    when the registry and its database are the same code. The gateway's inventory is not
    copied: every run starts its gateways on a fresh one, as the first did.
    """
    for name in ENROLLED_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, workdir / name)
    shutil.copytree(source / "secrets", workdir / "secrets")
    enrolled = len(read_identities(workdir / "identities.json"))
    if enrolled < largest:
        raise SystemExit(f"{source} enrolled {enrolled} collectors; --collectors asks for {largest}")


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per size and transport: Outpost, its bare line, the ratio and Outpost's own cost."""
    out = []
    for count, figures in results["sizes"].items():
        for transport, outpost in figures["outpost"].items():
            bare = figures["bare"].get(BARE_FOR[transport], {}).get("kib_per_connection")
            ours = outpost["kib_per_session"]
            own = ours - bare if bare else None
            out.append(
                {
                    "sessions": int(count),
                    "transport": transport,
                    "live": outpost["sessions_live"],
                    "outpost_kib": ours,
                    "bare_kib": bare,
                    "ratio": ours / bare if bare else None,
                    "own_kib": own,
                    "own_fraction_of_bare": own / bare if bare and own is not None else None,
                    "goal_met": (ours / bare <= GOAL_RATIO) if bare else None,
                    "h2l": outpost["handshake_to_live"],
                    "h2l_alone": outpost["handshake_to_live_one_at_a_time"],
                }
            )
    return out


def table(results: dict[str, Any]) -> str:
    """The figure as a Markdown table, one row per size and transport."""
    header = (
        "sessions",
        "transport",
        "Outpost KiB/session",
        "bare KiB/conn",
        "ratio",
        "own KiB",
        "own / bare",
        "<= 1.5x",
        "h2l median ms",
        "h2l p99 ms",
        "h2l alone ms",
    )
    lines: list[tuple[str, ...]] = [header]
    for row in rows(results):
        bare, h2l = row["bare_kib"], row["h2l"]
        live = f"{row['sessions']:,}" + ("" if row["live"] == row["sessions"] else f" ({row['live']:,} live)")
        lines.append(
            (
                live,
                row["transport"],
                f"{row['outpost_kib']:.1f}",
                f"{bare:.1f}" if bare else "-",
                f"{row['ratio']:.2f}x" if bare else "-",
                f"{row['own_kib']:.1f}" if bare else "-",
                f"{row['own_fraction_of_bare']:.2f}" if bare else "-",
                ("met" if row["goal_met"] else "not met") if bare else "-",
                f"{h2l['median_ms']:.0f}" if h2l["median_ms"] is not None else "-",
                f"{h2l['p99_ms']:.0f}" if h2l["p99_ms"] is not None else "-",
                f"{row['h2l_alone']['median_ms']:.1f}" if row["h2l_alone"]["median_ms"] is not None else "-",
            )
        )
    extra = [
        f"bare {kind} at {int(count):,}: {bare['kib_per_connection']:.1f} KiB/conn"
        for count, figures in results["sizes"].items()
        for kind, bare in figures["bare"].items()
        if kind not in BARE_FOR.values() and bare["kib_per_connection"] is not None
    ]
    return "\n".join([markdown_table(lines), *extra])


def traced_table(results: dict[str, Any]) -> str:
    """Under --tracemalloc: the Python-heap growth per session and where it was allocated."""
    out = []
    for count, figures in results["sizes"].items():
        for transport, outpost in figures["outpost"].items():
            traced = outpost["tracemalloc"]
            out.append(f"{transport} at {count}: traced {traced['traced_bytes_per_session']} B/session of Python heap")
            out += [f"  {line['bytes_per_session']:>6} B  {line['where']}" for line in traced["by_outpost_line"]]
    return "\n".join(out)


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("--collectors takes positive counts, e.g. 1000,3000,10000")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collectors", type=_sizes, default=[1000], help="session counts, e.g. 1000,3000,10000")
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--in-flight", type=int, default=100, help="handshakes in progress at once (all generators)")
    parser.add_argument("--generator-processes", type=int, default=2, help="load generator child processes")
    parser.add_argument("--announce-in-flight", type=int, default=32, help="first-contact handshakes at once")
    parser.add_argument("--enroll-chunk", type=int, default=500, help="collectors pending at once while enrolling")
    parser.add_argument("--register-in-flight", type=int, default=8, help="RegisterCollector calls at once")
    parser.add_argument(
        "--extra-bare", default=",".join(EXTRA_BARE), help="more bare servers per size (aiohttp: the gateway's stack)"
    )
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "idle_sessions.json")
    parser.add_argument("--plot", type=Path, help="also draw KiB/session vs sessions to this PNG")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    parser.add_argument(
        "--enrolled",
        type=Path,
        help="skip enrollment: reuse the registry and identities of a temp dir an earlier run kept (--keep)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="diagnosis only: trace the gateway's Python heap, report where session memory goes, skip the bare runs",
    )
    args = parser.parse_args()
    if (
        min(
            args.in_flight,
            args.generator_processes,
            args.announce_in_flight,
            args.register_in_flight,
            args.enroll_chunk,
        )
        < 1
    ):
        parser.error("--in-flight, --generator-processes and the enrollment concurrencies must be positive")
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-"))
    started = time.monotonic()
    try:
        results = asyncio.run(run(args, workdir))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if not args.tracemalloc:
        results["rows"] = rows(results)
    finish(results, traced_table(results) if args.tracemalloc else table(results), args.json, started)
    if args.plot is not None and not args.tracemalloc:
        from idle_sessions_plot import plot

        plot(args.plot, [("", args.json)])


if __name__ == "__main__":
    main()
