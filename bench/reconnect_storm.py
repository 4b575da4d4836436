"""Reconnect storm: time for N collectors to be live again after a gateway restart, and handshakes/s.

    .venv/bin/python bench/reconnect_storm.py [--collectors 1000] [--transport grpc]
        [--variants sigterm,sigkill] [--database-url URL | --postgres] [--no-bare]
        [--json bench/results/reconnect_storm.json]
    .venv/bin/python bench/reconnect_storm.py --quick     # 20 collectors, well under a minute

Theory of operation
-------------------
Registry, scheduler and gateway run as real processes (`harness/plane.py`): SQLite files
in a temp dir by default, `--database-url` for a database of your own, or `--postgres`
for a fresh PostgreSQL database on 127.0.0.1:5432 that is dropped afterwards. The
collectors live in this process (`harness/fleet.py`): each is the real collector
`Supervisor` (full-jitter backoff from `libs/outpost/backoff.py` with the
collector's defaults, 0.5 s initial and 30 s cap; reset after an accepted session;
reconnect after every end, as `outpost-collector` does) driving the real `Connection`
and `CollectorSession` over the real transport (`--transport`, each collector its own
TCP connection), with its own keys and instance uid, in one zone.

1. Enrollment (not measured): collectors start 25 at a time, each waiting until its
   first handshake was answered (PENDING); an admin's RegisterCollector(enable) for each
   (one cheap argon2 verifier per collector, bound to its key, as in the other benches); all go live.
2. Per `--variants` entry, with all N live: the gateway is sent SIGTERM (it drains:
   refuses new sessions, tells every session to reconnect, exits) or SIGKILL, and is
   started again on the same ports the moment the old process has exited (as a service
   manager restarting it at once would). Measured on the bench's monotonic clock:
   - *down*: signal -> the new gateway's ready file (drain + exit + start-up);
   - *signal -> all live*: until every collector has gone live again (a Welcome on a
     new session after the signal); also *ready -> all live*;
   - *handshakes/s*: collectors going live per 1 s bucket from the new gateway's ready
     moment, all buckets until the last one (zeros included): peak, median, mean; and
     the best 5 s window's rate (sustained);
   - *attempts*: every connection attempt the collectors started from the signal until
     all were live, by result (`harness/fleet.py`: accepted, connect failed, refused
     <reason>, handshake timeout, lost before accept); failed = all but accepted. Most
     failures are attempts while the gateway is down, which the backoff spaces out.
   - CPU seconds of the registry over the storm and of the new gateway since it started,
     and the new gateway's own session count (`ListSessions`) at the end.
3. Bare baseline (unless `--no-bare`), same run, same N: bare clients of the same
   transport (`harness/bare_servers.py`: a plain server that only holds connections)
   under the same reconnect policy (`plan_reconnect` on the same `Backoff`); the bare
   server is killed and started again on its port after the same down time as the
   gateway's SIGKILL restart (or the first variant's). What it takes them to be back is
   the floor set by the backoff schedule and the transport; the gateway's figure beyond
   it is handshake work (the gateway, the registry's AuthenticateCollector per
   collector) and queueing.

Nothing here asserts; it prints a table and writes JSON (every attempt's result per
second, every collector's time back).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from harness.bare_servers import OWN_CONNECTION
from harness.connections import _peak_rate, _percentile
from harness.control_plane import Child
from harness.credentials import authorized_channel
from harness.enroll import ANNOUNCE_IN_FLIGHT, PASSWORD, USERNAME, register_all
from harness.fleet import BareMember, Member, Recorder, quiet_logs
from harness.idle_collector import sealing
from harness.machine import finish, machine, markdown_table, raise_fd_limit
from harness.plane import ADMIN_DSN, Plane, Restart, TempDatabase, stop_async, wait_ready

from outpost.backoff import Backoff
from outpost.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.collector.domain.server_url import parse_server_url
from services.collector.transport import grpc_stream

REPO = Path(__file__).resolve().parent.parent
BARE_SERVERS = Path(__file__).parent / "harness" / "bare_servers.py"
VARIANTS = {"sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}
ENROLL_TIMEOUT = 300.0
SETTLE_SECONDS = 2.0

# Each collector is its own process in production, with its own TCP connection; grpc
# shares one connection between channels to the same target unless told not to.
grpc_stream.CHANNEL_OPTIONS = [*grpc_stream.CHANNEL_OPTIONS, OWN_CONNECTION]


def _metric(ready: dict[str, Any], name: str) -> float:
    """The sum of a metric's samples from a process's /metrics (NaN without one)."""
    address = ready.get("metrics")
    if not address:
        return math.nan
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if re.match(rf"{name}(\{{| )", line))


def _cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


# --- enrollment -----------------------------------------------------------------------------------
async def enroll(members: list[Member], recorder: Recorder, plane: Plane) -> dict[str, Any]:
    """Start every supervisor (25 waiting for a first answer at a time), register all, all live."""
    gate = asyncio.Semaphore(ANNOUNCE_IN_FLIGHT)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def announce(member: Member) -> None:
        async with gate:
            member.start()
            await recorder.wait(lambda: recorder.accepted[member.index], ENROLL_TIMEOUT, f"{member.name} announce")

    await asyncio.gather(*(announce(m) for m in members))
    announced = loop.time() - started
    refused = sum(1 for a in recorder.attempts if a.result != "accepted")
    await register_all(plane.registry_ready["grpc"], plane.credentials.admin_token, [m.name for m in members])
    await recorder.wait(lambda: recorder.live_count() == len(members), ENROLL_TIMEOUT, "all live after registering")
    return {
        "announce_seconds": round(announced, 2),
        "announce_failed_attempts": refused,
        "live_seconds": round(loop.time() - started, 2),
    }


async def gateway_sessions(plane: Plane) -> int:
    async with authorized_channel(plane.gateway_ready["admin"], plane.credentials.admin_token) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        response = await stub.ListSessions(gateway_pb2.ListSessionsRequest(), timeout=30)
    return len(response.sessions)


# --- one storm ------------------------------------------------------------------------------------
def figures(
    recorder: Recorder, count: int, signalled: float, ready: float, attempts_from: int, changes_from: int
) -> dict[str, Any]:
    """What happened from the signal until all `count` were back (see the module docstring)."""
    back = recorder.back_since(signalled)
    all_live = max(back.values())
    # Attempts started from the signal on (the sessions the restart ended started before it).
    attempts = [a for a in recorder.attempts[attempts_from:] if signalled <= a.started <= all_live]
    changes = recorder.changes[changes_from:]
    lives = [c.at for c in changes if c.live and c.at <= all_live]
    drops = {}
    for change in changes:
        if not change.live and change.member not in drops:
            drops[change.member] = change.at
    buckets = Counter(math.floor(at - ready) for at in lives if at >= ready)
    span = range(max(buckets) + 1) if buckets else range(0)
    per_second = [buckets.get(k, 0) for k in span]
    results = Counter(a.result for a in attempts)
    per_member = Counter(a.member for a in attempts)
    attempts_by_second: dict[str, list[int]] = {}
    seconds = math.floor(all_live - signalled) + 1
    for result in sorted(results):
        row = [0] * seconds
        for attempt in attempts:
            if attempt.result == result:
                row[min(seconds - 1, math.floor(attempt.started - signalled))] += 1
        attempts_by_second[result] = row
    back_after_signal = sorted(at - signalled for at in back.values())
    return {
        "signal_to_all_live_seconds": round(all_live - signalled, 3),
        "ready_to_all_live_seconds": round(all_live - ready, 3),
        "signal_to_all_dropped_seconds": round(max(drops.values()) - signalled, 3) if drops else None,
        "dropped": len(drops),
        "back_seconds_after_signal": {
            "median": round(statistics.median(back_after_signal), 3),
            "p99": round(_percentile(back_after_signal, 99), 3),
            "max": round(back_after_signal[-1], 3),
        },
        "handshakes_per_second": {
            "peak_1s_bucket": max(per_second, default=0),
            "median_1s_bucket": statistics.median(per_second) if per_second else 0,
            "mean": round(len(lives) / (all_live - ready), 1) if all_live > ready else None,
            "peak_any_1s": _peak_rate(lives, 1.0),
            "peak_5s_per_second": round(_peak_rate(lives, 5.0) / 5, 1),
            "buckets_from_ready": per_second,
        },
        "handshakes": len(lives),
        "attempts": len(attempts),
        "failed_attempts": len(attempts) - results.get("accepted", 0),
        "attempts_by_result": dict(sorted(results.items())),
        "attempts_per_collector": {
            "median": statistics.median([per_member.get(i, 0) for i in back]),
            "max": max(per_member.values(), default=0),
        },
        "attempts_by_second_from_signal": attempts_by_second,
        "lives_by_second_from_signal": [
            sum(1 for at in lives if math.floor(at - signalled) == k) for k in range(seconds)
        ],
    }


async def storm(
    plane: Plane, recorder: Recorder, count: int, sig: signal.Signals, timeout: float, drain_timeout: float
) -> dict[str, Any]:
    await recorder.wait(lambda: recorder.live_count() == count, timeout, "all live before the restart")
    await asyncio.sleep(SETTLE_SECONDS)
    assert plane.registry is not None
    attempts_from, changes_from = len(recorder.attempts), len(recorder.changes)
    registry_cpu = _cpu(plane.registry.pid)
    registry_decided = _metric(plane.registry_ready, "outpost_registry_authentications_total")
    load = os.getloadavg()[0]
    signalled = asyncio.get_running_loop().time()
    restarting = asyncio.create_task(plane.restart_gateway(sig, drain_timeout))
    try:
        await recorder.wait(
            lambda: recorder.live_count_since(signalled) == count, timeout, f"all back after {sig.name}"
        )
    finally:
        restart: Restart = await restarting
    assert plane.gateway is not None
    figure = figures(recorder, count, signalled, restart.ready_at, attempts_from, changes_from)
    return {
        "loadavg_1min_at_start": round(load, 2),
        "restart": restart.as_json(),
        **figure,
        "cpu_seconds": {
            "registry_during_storm": round(_cpu(plane.registry.pid) - registry_cpu, 3),
            "new_gateway_since_start": round(_cpu(plane.gateway.pid), 3),
        },
        "gateway_sessions_after": await gateway_sessions(plane),
        # Who decided the handshakes (ADR 0034): the registry (AuthenticateCollector answered,
        # refusals included) or the new gateway from its watched cache.
        "registry_decisions_during_storm": _metric(plane.registry_ready, "outpost_registry_authentications_total")
        - registry_decided,
        "gateway_verified_locally": _metric(plane.gateway_ready, "outpost_gateway_handshakes_verified_locally_total"),
        "gateway_registry_calls_refused": _metric(plane.gateway_ready, "outpost_gateway_registry_calls_refused_total"),
    }


# --- the bare baseline ----------------------------------------------------------------------------
def _bare_child(kind: str, workdir: Path, port: int, number: int) -> tuple[Child, Path]:
    ready = workdir / f"bare-{kind}-{number}.ready"
    child = Child(
        f"bare {kind}",
        [sys.executable, str(BARE_SERVERS), kind, f"--ready-file={ready}", f"--port={port}"],
        workdir / f"bare-{kind}.log",
    ).start()
    return child, ready


async def bare_storm(
    kind: str, count: int, down: float, args: argparse.Namespace, workdir: Path, timeout: float
) -> dict[str, Any]:
    """The same reconnect policy against a bare server killed and restarted after `down` seconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    server, ready_file = _bare_child(kind, workdir, 0, 1)
    recorder = Recorder()
    members: list[BareMember] = []
    try:
        port = int((await wait_ready(server, ready_file))["port"])
        start_up = loop.time() - started
        url = parse_server_url(f"tcp://127.0.0.1:{port}")
        members = [
            BareMember(recorder, kind, port, url, Backoff(args.backoff_initial, args.backoff_max)) for _ in range(count)
        ]
        for member in members:
            member.start()
        await recorder.wait(lambda: recorder.live_count() == count, timeout, f"bare {kind}: all connected")
        await asyncio.sleep(SETTLE_SECONDS)
        attempts_from, changes_from = len(recorder.attempts), len(recorder.changes)
        signalled = loop.time()
        code = await stop_async(server, signal.SIGKILL)
        exited = loop.time()
        await asyncio.sleep(max(0.0, down - (exited - signalled) - start_up))
        server, ready_file = _bare_child(kind, workdir, port, 2)
        spawned = loop.time()
        await wait_ready(server, ready_file)
        ready = loop.time()
        await recorder.wait(lambda: recorder.live_count_since(signalled) == count, timeout, f"bare {kind}: all back")
        restart = Restart("SIGKILL", signalled, exited, code, spawned, ready)
        return {
            "kind": kind,
            "down_seconds_target": round(down, 3),
            "restart": restart.as_json(),
            **figures(recorder, count, signalled, ready, attempts_from, changes_from),
        }
    finally:
        await asyncio.gather(*(m.stop() for m in members), return_exceptions=True)
        await stop_async(server, signal.SIGKILL)


# --- the run ----------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, plane: Plane, database: TempDatabase | None, workdir: Path) -> dict[str, Any]:
    log_events = quiet_logs()
    fds = raise_fd_limit()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    results: dict[str, Any] = {
        "figure": "reconnect_storm",
        "machine": machine(),
        "settings": {
            "quick": args.quick,
            "collectors": args.collectors,
            "transport": args.transport,
            "variants": variants,
            "database": "PostgreSQL (fresh, dropped afterwards)"
            if database
            else ("given --database-url" if args.database_url else "SQLite, each service its own file"),
            "backoff": {"initial_seconds": args.backoff_initial, "max_seconds": args.backoff_max},
            "collector_handshake_timeout_seconds": args.handshake_timeout,
            "gateway_args": plane.gateway_args,
            "heartbeat_interval_seconds": plane.heartbeat_interval,
            "fd_limit": list(fds),
            "verifier": "argon2id t=1 m=8 p=1, one per collector, bound to its key",
        },
    }
    step = _stepper()
    if database is not None:
        await step("fresh database", database.create)
        plane.database_url = database.url
    elif args.database_url:
        plane.database_url = args.database_url
    await step("registry, scheduler, gateway", plane.start)
    recorder = Recorder()
    url = parse_server_url(plane.url(args.transport))
    members = [
        Member(
            recorder,
            f"storm-{i:05d}",
            "bench",
            USERNAME,
            PASSWORD,  # each member binds its verifier to its own key (ADR 0013)
            url,
            Backoff(args.backoff_initial, args.backoff_max),
            args.handshake_timeout,
            sealing(plane.access_key_file),
        )
        for i in range(args.collectors)
    ]
    try:
        results["enrollment"] = await step(
            f"enroll {args.collectors} collectors", lambda: enroll(members, recorder, plane)
        )
        results["restarts"] = {}
        if not args.no_warm_up:
            # A fleet that has been running: each collector's first handshake after registration
            # proves the password the registration adopted, which the registry records once
            # (ADR 0034); that one is not what a restart of a running fleet costs.
            results["warm_up"] = await step(
                "warm-up restart (kill -9, not measured as a variant)",
                lambda: storm(plane, recorder, args.collectors, signal.SIGKILL, args.storm_timeout, args.drain_timeout),
            )
        for variant in variants:
            figure = await step(
                f"restart the gateway with {VARIANTS[variant].name}",
                lambda variant=variant: storm(  # type: ignore[misc]
                    plane, recorder, args.collectors, VARIANTS[variant], args.storm_timeout, args.drain_timeout
                ),
            )
            results["restarts"][variant] = figure
            print(
                f"    down {figure['restart']['gateway_down_seconds']:.1f}s, all live "
                f"{figure['signal_to_all_live_seconds']:.1f}s after the signal, peak "
                f"{figure['handshakes_per_second']['peak_1s_bucket']} handshakes/s, "
                f"{figure['failed_attempts']} failed attempts"
            )
    finally:
        stopping = time.monotonic()
        await asyncio.gather(*(m.stop() for m in members), return_exceptions=True)
        print(f"  collectors stopped: {time.monotonic() - stopping:.1f}s")
    results["collector_log_events"] = dict(sorted(log_events.items()))
    if not args.no_bare:
        restarts = results["restarts"]
        source = restarts.get("sigkill") or next(iter(restarts.values()), None)
        down = source["restart"]["gateway_down_seconds"] if source else 3.0
        results["bare"] = await step(
            f"bare {args.transport} baseline, {args.collectors} clients, down {down:.1f}s",
            lambda: bare_storm(args.transport, args.collectors, down, args, workdir, args.storm_timeout),
        )
    return results


def _stepper() -> Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]:
    async def step(name: str, work: Callable[[], Awaitable[Any]]) -> Any:
        started = time.monotonic()
        value = await work()
        print(f"  {name}: {time.monotonic() - started:.1f}s")
        return value

    return step


def table(results: dict[str, Any]) -> str:
    header = (
        "restart",
        "down s",
        "signal -> all live s",
        "ready -> all live s",
        "back after signal s, median / p99",
        "handshakes/s peak (1 s)",
        "median",
        "best 5 s",
        "failed attempts",
        "attempts per collector, median / max",
    )
    rows: list[tuple[str, ...]] = [header]

    def row(name: str, figure: dict[str, Any]) -> None:
        rate = figure["handshakes_per_second"]
        back = figure["back_seconds_after_signal"]
        per = figure["attempts_per_collector"]
        rows.append(
            (
                name,
                f"{figure['restart']['gateway_down_seconds']:.2f}",
                f"{figure['signal_to_all_live_seconds']:.2f}",
                f"{figure['ready_to_all_live_seconds']:.2f}",
                f"{back['median']:.2f} / {back['p99']:.2f}",
                str(rate["peak_1s_bucket"]),
                f"{rate['median_1s_bucket']:g}",
                f"{rate['peak_5s_per_second']:.1f}",
                f"{figure['failed_attempts']} of {figure['attempts']}",
                f"{per['median']:g} / {per['max']}",
            )
        )

    names = {"sigterm": "gateway SIGTERM (drain), restart", "sigkill": "gateway kill -9, restart"}
    for variant, figure in results["restarts"].items():
        row(names[variant], figure)
    if "bare" in results:
        row(f"bare {results['bare']['kind']} server kill -9, restart (baseline)", results["bare"])
    lines = [markdown_table(rows)]
    settings = results["settings"]
    lines.append(
        f"{settings['collectors']} collectors over {settings['transport']}, {settings['database']}; backoff "
        f"{settings['backoff']['initial_seconds']:g}-{settings['backoff']['max_seconds']:g}s full jitter."
    )
    for variant, figure in results["restarts"].items():
        by = ", ".join(f"{name} {n}" for name, n in figure["attempts_by_result"].items())
        lines.append(
            f"{variant}: attempts {by}; gateway sessions after: {figure['gateway_sessions_after']}; "
            f"registry CPU {figure['cpu_seconds']['registry_during_storm']:.2f}s during the storm; "
            f"handshakes decided by the registry {figure.get('registry_decisions_during_storm', math.nan):g}, "
            f"by the gateway's cache {figure.get('gateway_verified_locally', math.nan):g}; registry calls refused "
            f"(retry-after) {figure.get('gateway_registry_calls_refused', math.nan):g}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 collectors unless --collectors is given")
    parser.add_argument("--collectors", type=int)
    parser.add_argument("--transport", choices=("grpc", "websocket", "tcp"), default="grpc")
    parser.add_argument("--variants", default="sigterm,sigkill", help="comma-separated: sigterm, sigkill")
    parser.add_argument("--database-url", help="services' database (used as given); default SQLite files")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database, dropped afterwards")
    parser.add_argument("--admin-dsn", default=os.environ.get("OUTPOST_TEST_POSTGRES_DSN", ADMIN_DSN))
    parser.add_argument("--backoff-initial", type=float, default=0.5, help="the collector's default")
    parser.add_argument("--backoff-max", type=float, default=30.0, help="the collector's default")
    parser.add_argument("--handshake-timeout", type=float, default=15.0, help="the collector's default")
    parser.add_argument("--heartbeat-interval", type=int, default=30, help="the registry's (default 30)")
    parser.add_argument(
        "--gateway-arg", action="append", default=[], help="extra gateway flag, e.g. --gateway-arg=--drain-seconds=5"
    )
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="SIGKILL a draining gateway after this")
    parser.add_argument("--storm-timeout", type=float, default=600.0, help="give up on all being back after this")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-transport baseline")
    parser.add_argument(
        "--no-warm-up", action="store_true", help="skip the unmeasured restart after enrollment (see run())"
    )
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "reconnect_storm.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite files)")
    args = parser.parse_args()
    if args.collectors is None:
        args.collectors = 20 if args.quick else 1000
    unknown = {v.strip() for v in args.variants.split(",") if v.strip()} - set(VARIANTS)
    if unknown or not args.variants.strip():
        parser.error(f"--variants: choose from {', '.join(VARIANTS)}")
    if args.collectors < 1:
        parser.error("--collectors must be positive")
    if args.postgres and args.database_url:
        parser.error("--postgres and --database-url exclude each other")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # run the clean-up below on SIGTERM too
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-storm-"))
    # Every collector announces itself (pending) before the admin registers them all: the
    # registry's pending bounds (issue 9) are raised above what the bench creates.
    pending = args.collectors + 100
    plane = Plane(
        workdir,
        heartbeat_interval=args.heartbeat_interval,
        gateway_args=list(args.gateway_arg),
        registry_args=[f"--max-pending={pending}", f"--max-pending-per-network={pending}"],
        metrics=True,
    )
    database = TempDatabase(args.admin_dsn) if args.postgres else None
    started = time.monotonic()
    try:
        print(f"control plane in {workdir}")
        results = asyncio.run(run(args, plane, database, workdir))
    finally:
        plane.stop()
        try:
            if database is not None:
                database.drop_blocking()
        finally:
            if args.keep:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    finish(results, table(results), args.json, started)


if __name__ == "__main__":
    main()
