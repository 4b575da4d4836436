"""Dispatch latency: from a run being due to its JobAssignment arriving on the collector's session.

    .venv/bin/python bench/dispatch_latency.py [--collectors 100] [--repeats 5] [--transport grpc]
        [--due 100,1000] [--no-schedule] [--json bench/results/dispatch_latency.json]
        [--png bench/results/dispatch_latency.png] [--compare before.json]

Theory of operation
-------------------
The control plane is the e2e harness's (`tests/process_harness.py`): registry, scheduler
and gateway as real processes on SQLite. The collectors live in this process:
`_discovery_collector.DispatchCollector`s, each the real `CollectorSession` over the real
collector transport with its own key and instance uid (100 `outpost-collector`
processes would be ~7 GiB of RSS at 75 MiB each, and measure the machine). Each
answers a run with RUNNING then SUCCEEDED at once, without scanning.

1. Enrollment: every collector connects and waits PENDING; an admin's RegisterCollector
   (enable) for each, with one cheap argon2 verifier per collector (as `idle_sessions.py` does);
   all go live and stay connected. One discovery per collector (`--collector` it,
   target one loopback address, one port, probes tcp).
2. Bare baseline: round trips to the scheduler from here, one at a time and 100 at once:
   its gRPC health check (the hop alone) and GetSettings (a hop, the admin token checked
   with the registry (one more round trip, issue 9), and one database read).
   A dispatch takes several hops and writes: StartDiscovery's commit, the scheduler's
   watch stream to the gateway, the session's ClaimJobRuns, the assignment frame.
3. Alone: one StartDiscovery at a time, waiting for its assignment (20 collectors).
4. Rounds (`--repeats`): StartDiscovery for every discovery at once (one gRPC channel,
   all calls in flight together). For each collector: from that call's return to its
   assignment, and from the run's `created_at` (the scheduler's clock; the same machine)
   to the assignment; and the round's makespan, from the first call to the last
   assignment. The next round starts once every run has ended.
5. Due at once (unless `--no-schedule`), for each size in `--due` (default: all
   collectors): one cron schedule for each of the first `n` discoveries, all due at the
   same minute; per collector from `due_at` to its assignment (p50/p95/p99), and the
   scheduler's CPU seconds (user + system, psutil) from 1 s before `due_at` to the last
   assignment and to the last run recorded SUCCEEDED (read from the scheduler's
   `/metrics`, so the bench adds no scheduler work while it waits), divided by `n`. The
   scheduler's idle CPU rate (5 s before, the sessions connected) is measured in the
   same run, and the figures are given raw and less that idle rate. The schedules are
   disabled again afterwards. Each size waits up to ~2 minutes for its minute.

Nothing here asserts beyond every assignment arriving; it prints a table, writes JSON and
a PNG of the due -> assignment percentiles against the runs due at once (with the
`--compare` JSON's, e.g. the code before, beside them). The machine's load average is in
the JSON; `loaded` says whether it was above the CPU count at either end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import re
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import psutil
from _discovery_collector import Arrival, DispatchCollector
from _discovery_plane import ControlPlane, register_collectors, start_control_plane
from _discovery_report import REPO, Spread, percentile, write_results
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness.bare_servers import OWN_CONNECTION
from harness.idle_collector import CollectorIdentity, sealing
from harness.machine import machine, markdown_table

from outpost.agent.v1 import agent_pb2
from outpost.auth.service_tokens import peer_channel
from outpost.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from outpost.session.collector import CollectorState
from services.collector.domain.server_url import parse_server_url
from services.collector.transport import grpc_stream

USERNAME = "svc-bench"
PASSWORD = "bench-password"
TARGET = "127.0.3.1"
PORT = 21999
ALONE = 20
ANNOUNCE_IN_FLIGHT = 10
ANNOUNCE_ATTEMPTS = 30
CONNECT_TIMEOUT = 120.0
ARRIVAL_TIMEOUT = 60.0
SETTLE_TIMEOUT = 60.0
TERMINAL = frozenset(
    {
        agent_pb2.JOB_STATE_SUCCEEDED,
        agent_pb2.JOB_STATE_FAILED,
        agent_pb2.JOB_STATE_TIMED_OUT,
        agent_pb2.JOB_STATE_CANCELLED,
    }
)

# Each collector is its own process in production, with its own TCP connection; grpc
# shares one connection between channels to the same target unless told not to.
grpc_stream.CHANNEL_OPTIONS = [*grpc_stream.CHANNEL_OPTIONS, OWN_CONNECTION]


def _ms(seconds: float) -> float:
    return seconds * 1000


def _latency_summary(values_ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(values_ms),
        "median_ms": round(Spread.of(values_ms).median, 2),
        "p99_ms": round(percentile(values_ms, 99), 2),
        "max_ms": round(max(values_ms), 2),
        "min_ms": round(min(values_ms), 2),
    }


def _timestamp(value: Any) -> float:
    return float(value.ToMicroseconds()) / 1e6


# --- enrollment -------------------------------------------------------------------------------
async def enroll(plane: ControlPlane, count: int, transport: str) -> list[DispatchCollector]:
    """`count` collectors connected, registered and live; closed again if anything fails."""
    verifier = PASSWORD  # hello() binds it to each key (ADR 0013)
    identities = [CollectorIdentity.generate(f"bench-{i:03d}") for i in range(count)]
    url = parse_server_url(plane.url(transport))
    collectors: list[DispatchCollector] = []
    gate = asyncio.Semaphore(ANNOUNCE_IN_FLIGHT)

    async def announce(identity: CollectorIdentity) -> DispatchCollector:
        # A real collector retries a refused handshake after a backoff; so does this one.
        async with gate:
            for attempt in range(ANNOUNCE_ATTEMPTS):
                collector = DispatchCollector(
                    identity, identity.hello(USERNAME, verifier), sealing(plane.access_key_file)
                )
                try:
                    await collector.connect(url, CollectorState.PENDING, CONNECT_TIMEOUT)
                except RuntimeError:
                    await collector.close()
                    if attempt + 1 == ANNOUNCE_ATTEMPTS:
                        raise
                    await asyncio.sleep(min(1.0 + attempt, 5.0))  # a loaded registry sheds handshakes
                else:
                    return collector
        raise AssertionError("unreachable")

    try:
        for done in asyncio.as_completed([announce(identity) for identity in identities]):
            collectors.append(await done)
        await register_collectors(
            plane.registry_ready["grpc"], plane.admin_token, [c.identity.name for c in collectors], USERNAME, PASSWORD
        )
        await asyncio.gather(*(c.wait_for(CollectorState.ENABLED, CONNECT_TIMEOUT) for c in collectors))
    except BaseException:
        await close_all(collectors)
        raise
    collectors.sort(key=lambda c: c.identity.name)
    return collectors


async def close_all(collectors: list[DispatchCollector]) -> None:
    await asyncio.gather(*(c.close() for c in collectors), return_exceptions=True)


async def create_discoveries(stub: scheduler_pb2_grpc.SchedulerServiceStub, names: list[str]) -> None:
    for name in names:
        await stub.CreateDiscovery(
            scheduler_pb2.CreateDiscoveryRequest(
                discovery=scheduler_pb2.Discovery(
                    name=f"d-{name}", targets=[TARGET], ports=[PORT], probes=["tcp"], collector=name
                )
            ),
            timeout=30,
        )


# --- the figures --------------------------------------------------------------------------------
async def rpc_baseline(channel: grpc.aio.Channel, count: int) -> dict[str, Any]:
    """Round trips to the scheduler: a health check (gRPC alone) and GetSettings (token check + one read).

    Each `count` times one at a time, then `count` at once (timed from the burst's start).
    """
    loop = asyncio.get_running_loop()
    health = health_pb2_grpc.HealthStub(channel)
    scheduler = scheduler_pb2_grpc.SchedulerServiceStub(channel)
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "health_check": lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=30),
        "get_settings": lambda: scheduler.GetSettings(scheduler_pb2.GetSettingsRequest(), timeout=30),
    }
    figures: dict[str, Any] = {}
    for name, call in calls.items():
        alone = []
        for _ in range(count):
            started = loop.time()
            await call()
            alone.append(_ms(loop.time() - started))

        async def one(started: float, call: Callable[[], Awaitable[Any]] = call) -> float:
            await call()
            return _ms(loop.time() - started)

        started = loop.time()
        burst = await asyncio.gather(*(one(started) for _ in range(count)))
        figures[name] = {"one_at_a_time": _latency_summary(alone), "burst": _latency_summary(list(burst))}
    return figures


async def start_one(
    stub: scheduler_pb2_grpc.SchedulerServiceStub, collector: DispatchCollector
) -> tuple[scheduler_pb2.JobRun, float]:
    response = await stub.StartDiscovery(
        scheduler_pb2.StartDiscoveryRequest(name=f"d-{collector.identity.name}", actor="bench"), timeout=60
    )
    return response.job_run, asyncio.get_running_loop().time()


async def alone(stub: scheduler_pb2_grpc.SchedulerServiceStub, collectors: list[DispatchCollector]) -> dict[str, Any]:
    """One run at a time: StartDiscovery's return -> assignment, on an otherwise idle system."""
    from_return, from_created = [], []
    for collector in collectors:
        run, returned = await start_one(stub, collector)
        arrival = await collector.wait_for_run(run.id, ARRIVAL_TIMEOUT)
        from_return.append(_ms(arrival.monotonic - returned))
        from_created.append(_ms(arrival.wall - _timestamp(run.created_at)))
        await wait_ended(stub, [run.id])
    return {"from_start_return": _latency_summary(from_return), "from_created_at": _latency_summary(from_created)}


def cpu_seconds(plane: ControlPlane) -> dict[str, float]:
    """CPU seconds (user + system) so far of each control-plane process and of this one."""
    processes = {"registry": plane.registry, "scheduler": plane.scheduler, "gateway": plane.gateway}
    pids = {name: process.pid for name, process in processes.items() if process is not None}
    pids["bench (collectors)"] = os.getpid()
    return {name: sum(psutil.Process(pid).cpu_times()[:2]) for name, pid in pids.items()}


async def burst(
    stub: scheduler_pb2_grpc.SchedulerServiceStub, collectors: list[DispatchCollector], plane: ControlPlane
) -> dict[str, Any]:
    """StartDiscovery for every collector at once; per collector, the way to its assignment."""
    loop = asyncio.get_running_loop()
    cpu_before = cpu_seconds(plane)
    began = loop.time()
    started = await asyncio.gather(*(start_one(stub, c) for c in collectors))
    arrivals: list[Arrival] = await asyncio.gather(
        *(c.wait_for_run(run.id, ARRIVAL_TIMEOUT) for c, (run, _) in zip(collectors, started, strict=True))
    )
    from_return = [_ms(a.monotonic - returned) for a, (_, returned) in zip(arrivals, started, strict=True)]
    from_created = [_ms(a.wall - _timestamp(run.created_at)) for a, (run, _) in zip(arrivals, started, strict=True)]
    makespan = loop.time() - began
    cpu_after = cpu_seconds(plane)
    await wait_ended(stub, [run.id for run, _ in started])
    return {
        "cpu_seconds_until_last_assignment": {
            name: round(cpu_after[name] - cpu_before[name], 3) for name in cpu_before
        },
        "from_start_return": _latency_summary(from_return),
        "from_created_at": _latency_summary(from_created),
        "start_calls_ms": round(_ms(max(returned for _, returned in started) - began), 1),
        "makespan_ms": round(_ms(makespan), 1),
        "raw_from_start_return_ms": [round(v, 2) for v in from_return],
        "raw_from_created_at_ms": [round(v, 2) for v in from_created],
    }


async def wait_ended(stub: scheduler_pb2_grpc.SchedulerServiceStub, run_ids: list[str]) -> None:
    """Until every run is in a final state (the collectors answer at once), bounded."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    remaining = set(run_ids)
    while remaining:
        listed = await stub.ListJobRuns(scheduler_pb2.ListJobRunsRequest(limit=1000), timeout=30)
        remaining -= {run.id for run in listed.job_runs if run.state in TERMINAL}
        if not remaining:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(remaining)} runs still not ended after {SETTLE_TIMEOUT:g}s")
        await asyncio.sleep(0.25)


def scheduler_cpu(plane: ControlPlane) -> float:
    assert plane.scheduler is not None
    return float(sum(psutil.Process(plane.scheduler.pid).cpu_times()[:2]))


def succeeded_total(plane: ControlPlane) -> float:
    """The scheduler's own count of runs recorded SUCCEEDED (its /metrics, no database read)."""
    with urllib.request.urlopen(f"http://{plane.scheduler_ready['metrics']}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(r'^outpost_scheduler_job_runs_finished_total\{state="succeeded"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def due_at_once(
    stub: scheduler_pb2_grpc.SchedulerServiceStub, collectors: list[DispatchCollector], plane: ControlPlane
) -> dict[str, Any]:
    """A schedule for each of `collectors`, all due at one minute: due_at -> assignment, and scheduler CPU."""
    n = len(collectors)
    # Far enough ahead to create every schedule first (~30 ms each on a loaded machine).
    lead = 15 + 0.03 * n
    now = dt.datetime.now(dt.UTC)
    due = (now + dt.timedelta(seconds=lead + 60)).replace(second=0, microsecond=0)
    before = {c.identity.name: set(c.arrivals) for c in collectors}
    for collector in collectors:
        await stub.CreateSchedule(
            scheduler_pb2.CreateScheduleRequest(
                schedule=scheduler_pb2.Schedule(
                    name=f"s{n}-{collector.identity.name}",
                    discovery=f"d-{collector.identity.name}",
                    minute=str(due.minute),
                    hour=str(due.hour),
                    day_of_month="*",
                    month="*",
                    day_of_week="*",
                    timezone="UTC",
                    enabled=True,
                )
            ),
            timeout=30,
        )
    print(f"  {n} schedules due at {due:%H:%M:%S} UTC; waiting")
    succeeded_before = succeeded_total(plane)
    # The scheduler's idle CPU rate (ticks, watch bookmarks), sessions connected: 5 s.
    await asyncio.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds() - 7.0))
    idle_from, idle_cpu = time.monotonic(), scheduler_cpu(plane)
    await asyncio.sleep(5.0)
    idle_rate = (scheduler_cpu(plane) - idle_cpu) / (time.monotonic() - idle_from)
    await asyncio.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds() - 1.0))
    window_from, cpu_from = time.monotonic(), scheduler_cpu(plane)
    patience = max(ARRIVAL_TIMEOUT, 0.2 * n)  # the code before ADR 0033 took ~50 ms of CPU per run
    wait = (due - dt.datetime.now(dt.UTC)).total_seconds() + patience

    async def new_arrival(collector: DispatchCollector) -> Arrival:
        async with asyncio.timeout(wait):
            while True:
                fresh = [a for run_id, a in collector.arrivals.items() if run_id not in before[collector.identity.name]]
                if fresh:
                    return fresh[0]
                collector.arrived.clear()
                await collector.arrived.wait()

    arrivals = await asyncio.gather(*(new_arrival(c) for c in collectors))
    delivered_at, cpu_delivered = time.monotonic(), scheduler_cpu(plane)
    deadline = time.monotonic() + patience
    while succeeded_total(plane) < succeeded_before + n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the scheduler recorded fewer than {n} runs succeeded after {patience:g}s")
        await asyncio.sleep(0.2)
    ended_at, cpu_ended = time.monotonic(), scheduler_cpu(plane)
    for collector in collectors:
        await stub.SetScheduleEnabled(
            scheduler_pb2.SetScheduleEnabledRequest(name=f"s{n}-{collector.identity.name}", enabled=False), timeout=30
        )
    from_due = [_ms(a.wall - due.timestamp()) for a in arrivals]
    to_delivered = cpu_delivered - cpu_from
    to_ended = cpu_ended - cpu_from
    return {
        "runs": n,
        "due_at": due.isoformat(),
        "from_due_at": {**_latency_summary(from_due), "p95_ms": round(percentile(from_due, 95), 2)},
        "scheduler_cpu": {
            "idle_cpu_seconds_per_second": round(idle_rate, 4),
            "to_last_assignment_s": round(to_delivered, 3),
            "to_last_succeeded_s": round(to_ended, 3),
            "window_to_last_assignment_s": round(delivered_at - window_from, 2),
            "window_to_last_succeeded_s": round(ended_at - window_from, 2),
            "ms_per_run_to_last_assignment": round(_ms(to_delivered) / n, 3),
            "ms_per_run_to_last_succeeded": round(_ms(to_ended) / n, 3),
            "ms_per_run_to_last_assignment_less_idle": round(
                _ms(to_delivered - idle_rate * (delivered_at - window_from)) / n, 3
            ),
            "ms_per_run_to_last_succeeded_less_idle": round(
                _ms(to_ended - idle_rate * (ended_at - window_from)) / n, 3
            ),
        },
        "raw_from_due_at_ms": [round(v, 2) for v in from_due],
    }


# --- the run ------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, plane: ControlPlane) -> dict[str, Any]:
    results: dict[str, Any] = {
        "figure": "dispatch_latency",
        "machine": machine(),
        "settings": {
            "collectors": args.collectors,
            "transport": args.transport,
            "repeats": args.repeats,
            "burst": min(args.burst, args.collectors),
            "due_at_once": args.due or [args.collectors],
            "database": "SQLite (each service its own file)",
            "control_plane": "tests/process_harness.py ControlPlane: registry, scheduler (tick 1 s), gateway",
            "collectors_are": "in-process DispatchCollector: real CollectorSession over the real transport",
            "discovery": f"one per collector: {TARGET}:{PORT}, probes tcp (the collectors answer without scanning)",
        },
    }
    step = _stepper()
    collectors = await step("enroll", lambda: enroll(plane, args.collectors, args.transport))
    try:
        async with peer_channel(plane.scheduler_ready["grpc"], None, plane.admin_token) as channel:
            stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
            names = [c.identity.name for c in collectors]
            await step("create discoveries", lambda: create_discoveries(stub, names))
            results["rpc_baseline"] = await step("bare baseline", lambda: rpc_baseline(channel, args.collectors))
            results["alone"] = await step("one at a time", lambda: alone(stub, collectors[:ALONE]))
            results["rounds"] = []
            for repeat in range(args.repeats):
                figure = await step(
                    f"round {repeat + 1}/{args.repeats}", lambda: burst(stub, collectors[: args.burst], plane)
                )
                results["rounds"].append(figure)
            if not args.no_schedule:
                results["due_at_once"] = []
                for n in args.due or [len(collectors)]:
                    figure = await step(f"{n} due at once", lambda n=n: due_at_once(stub, collectors[:n], plane))
                    results["due_at_once"].append(figure)
    finally:
        await close_all(collectors)
    return results


def _stepper() -> Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]:
    async def step(name: str, work: Callable[[], Awaitable[Any]]) -> Any:
        started = time.monotonic()
        value = await work()
        print(f"  {name}: {time.monotonic() - started:.1f}s")
        return value

    return step


def pooled(rounds: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """All rounds' per-collector values together, and the spread of the per-round medians and p99s."""
    values = [v for r in rounds for v in r[f"raw_{key}_ms"]]
    return {
        **_latency_summary(values),
        "round_medians_ms": Spread.of([r[key]["median_ms"] for r in rounds]).as_json(2),
        "round_p99s_ms": Spread.of([r[key]["p99_ms"] for r in rounds]).as_json(2),
    }


def table(results: dict[str, Any]) -> str:
    n = results["settings"]["burst"]
    live = results["settings"]["collectors"]
    rows = []

    def row(what: str, figure: dict[str, Any], medians: dict[str, Any] | None = None) -> None:
        spread = f"{medians['min']:.1f}-{medians['max']:.1f}" if medians else "-"
        rows.append(
            (
                what,
                str(figure["n"]),
                f"{figure['median_ms']:.1f}",
                f"{figure['p99_ms']:.1f}",
                f"{figure['max_ms']:.1f}",
                spread,
            )
        )

    rounds = results["rounds"]
    if rounds:
        from_return, from_created = results["pooled_from_start_return"], results["pooled_from_created_at"]
        row(f"StartDiscovery returned -> assignment, {n} at once", from_return, from_return["round_medians_ms"])
        row(f"run created_at -> assignment, {n} at once", from_created, from_created["round_medians_ms"])
        makespans = Spread.of([r["makespan_ms"] for r in rounds])
        rows.append(
            (
                f"first StartDiscovery -> last assignment, {n} at once",
                str(len(rounds)),
                f"{makespans.median:.1f}",
                "-",
                f"{makespans.high:.1f}",
                f"{makespans.low:.1f}-{makespans.high:.1f}",
            )
        )
    row("StartDiscovery returned -> assignment, one at a time", results["alone"]["from_start_return"])
    row("run created_at -> assignment, one at a time", results["alone"]["from_created_at"])
    for figure in results.get("due_at_once", []):
        row(f"schedule due_at -> assignment, {figure['runs']} due at once, {live} live", figure["from_due_at"])
    baseline = results["rpc_baseline"]
    row("bare: scheduler health check, one at a time", baseline["health_check"]["one_at_a_time"])
    row(f"bare: scheduler health check, {live} at once", baseline["health_check"]["burst"])
    row("bare: GetSettings (token check + DB read), one at a time", baseline["get_settings"]["one_at_a_time"])
    row(f"bare: GetSettings (token check + DB read), {live} at once", baseline["get_settings"]["burst"])
    header = ("what", "n", "median ms", "p99 ms", "max ms", "round medians ms (min-max)")
    notes = []
    if rounds:
        cpu = {
            name: Spread.of([r["cpu_seconds_until_last_assignment"][name] for r in rounds]).median
            for name in rounds[0]["cpu_seconds_until_last_assignment"]
        }
        busy = ", ".join(f"{name} {seconds:.2f}" for name, seconds in cpu.items())
        notes.append(f"CPU seconds per round of {n}, first call to last assignment (median): {busy}")
    due_rows = [
        (
            str(f["runs"]),
            f"{f['from_due_at']['median_ms']:.0f}",
            f"{f['from_due_at']['p95_ms']:.0f}",
            f"{f['from_due_at']['p99_ms']:.0f}",
            f"{f['scheduler_cpu']['ms_per_run_to_last_assignment']:.2f}"
            f" ({f['scheduler_cpu']['ms_per_run_to_last_assignment_less_idle']:.2f})",
            f"{f['scheduler_cpu']['ms_per_run_to_last_succeeded']:.2f}"
            f" ({f['scheduler_cpu']['ms_per_run_to_last_succeeded_less_idle']:.2f})",
        )
        for f in results.get("due_at_once", [])
    ]
    if due_rows:
        due_header = (
            "runs due at once",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "scheduler CPU ms/run to last assignment (less idle)",
            "... to last SUCCEEDED recorded (less idle)",
        )
        notes.append(f"\nDue at once, {live} live sessions, from due_at:\n" + markdown_table([due_header, *due_rows]))
    return markdown_table([header, *rows]) + "\n" + "\n".join(notes)


def plot(results: dict[str, Any], png: Path, compare: dict[str, Any] | None) -> None:
    """Percentiles of due_at -> assignment against the runs due at once (log-log)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot; --plot-only redraws from the JSON")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, data, style in (("after", results, "-"), ("before", compare, "--")):
        figures = (data or {}).get("due_at_once", [])
        if not figures:
            continue
        sizes = [f["runs"] for f in figures]
        for key, marker in (("median_ms", "o"), ("p95_ms", "s"), ("p99_ms", "^")):
            values = [f["from_due_at"].get(key, math.nan) for f in figures]
            name = key.removesuffix("_ms").replace("median", "p50")
            live_here = data["settings"]["collectors"] if data else 0
            ax.plot(sizes, values, style, marker=marker, label=f"{name} {label} ({live_here} live)")
    ax.axhline(1000, color="grey", linewidth=0.8, linestyle=":", label="goal: p99 < 1 s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("runs due in the same minute")
    ax.set_ylabel("due_at -> JobAssignment on the session, ms")
    live = results["settings"]["collectors"]
    load = results["machine"].get("loadavg_at_start", [0])[0]
    cpus = results["machine"]["cpu_count"]
    ax.set_title(f"Dispatch latency (after: {live} live sessions, load {load:.1f} on {cpus} CPUs)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", linewidth=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collectors", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--transport", choices=("grpc", "websocket", "tcp"), default="grpc")
    parser.add_argument("--no-schedule", action="store_true", help="skip the due-at-once phase (~2 min per size)")
    parser.add_argument(
        "--due",
        type=lambda text: [int(x) for x in text.split(",")],
        default=None,
        help="runs due at once, comma-separated, each at most --collectors (default: --collectors)",
    )
    parser.add_argument("--burst", type=int, default=1_000_000, help="StartDiscovery rounds use the first N collectors")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "dispatch_latency.json")
    parser.add_argument("--png", type=Path, default=REPO / "bench" / "results" / "dispatch_latency.png")
    parser.add_argument("--compare", type=Path, default=None, help="a JSON of this bench to plot beside (e.g. before)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    parser.add_argument("--plot-only", action="store_true", help="only draw the PNG from --json (and --compare)")
    args = parser.parse_args()
    if args.plot_only:
        compare = json.loads(args.compare.read_text()) if args.compare else None
        plot(json.loads(args.json.read_text()), args.png, compare)
        return
    if args.collectors < ALONE or args.repeats < 0:
        parser.error(f"--collectors must be at least {ALONE} and --repeats not negative")
    if args.due and (max(args.due) > args.collectors or min(args.due) < 1):
        parser.error("each --due size must be between 1 and --collectors")
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-dispatch-"))
    started = time.monotonic()
    plane = None
    try:
        print(f"control plane in {workdir}")
        # Every collector announces from 127.0.0.1 and waits pending until registered: raise
        # the registry's pending bounds (default 100 per network) above the fleet.
        pending = max(args.collectors, 100)
        plane = start_control_plane(
            workdir, registry_args=[f"--max-pending={pending}", f"--max-pending-per-network={pending}"]
        )
        results = asyncio.run(run(args, plane))
    finally:
        if plane is not None:
            plane.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if results["rounds"]:
        results["pooled_from_start_return"] = pooled(results["rounds"], "from_start_return")
        results["pooled_from_created_at"] = pooled(results["rounds"], "from_created_at")
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    cpus = os.cpu_count() or 1
    results["machine"]["loaded"] = max(results["machine"]["loadavg_at_start"][0], os.getloadavg()[0]) > cpus
    print()
    print(table(results))
    write_results(args.json, results)
    compare = json.loads(args.compare.read_text()) if args.compare else None
    if results.get("due_at_once"):
        plot(results, args.png, compare)
    print(
        f"\nwrote {args.json} ({results['wall_seconds']:.0f}s); load average {os.getloadavg()[0]:.1f}"
        f"{' (loaded)' if results['machine']['loaded'] else ''}"
    )


if __name__ == "__main__":
    main()
