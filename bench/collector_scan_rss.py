"""Collector memory while it scans: the real `outpost-collector`'s RSS, idle and during a /24 scan.

    .venv/bin/python bench/collector_scan_rss.py [--targets 127.0.1.0/24] [--repeats 5]
        [--venv image|dev] [--scan-workers N] [--json bench/results/collector_scan_rss.json]

Theory of operation
-------------------
Everything runs as an operator would run it: the e2e harness's control plane
(`tests/process_harness.py`: registry, scheduler, gateway on SQLite), one real
`outpost-collector` process connected over gRPC, registered and enabled with
`outpostctl collectors register --enable`, and one discovery created with `outpostctl`:
the /24 x 20 ports, probes tcp and banners. A child process
(`_discovery_listeners.py`) serves 12 listeners on four addresses of the /24 that speak
SSH or HTTP, so the banner probe has something to read; every other pair is refused
(on loopback every address is a live host, so all 256 become devices and travel to the
inventory in batches).

Per repeat, the collector's RSS is first let settle (`harness.control_plane.settled_rss`:
it moved less than 128 KiB over 2 s): that is its idle RSS. Then `outpostctl discoveries
run --wait` starts the run and waits for it to end, while psutil samples the collector's
RSS every 100 ms; the peak and the median of those samples are the scan's figures.
Repeats reuse the same collector process, as a long-running collector would.

The collector runs on the Python packages its image installs (`--venv image`, the
default): a scratch venv holding only the distributions of `outpost[collector]`, copied
from this venv (`tests/deploy/extras.py`, as `deploy_footprint.py` does), with the
source tree on PYTHONPATH. The development venv (`--venv dev`) also holds the server's
and the CLI's packages, and some are imported when present (structlog imports rich,
~6 MiB, whenever it is installed), so it weighs more than a deployed collector does.

With `--scan-workers N` (N > 1) the collector runs its connects in N worker processes
(`--scan-workers`); their RSS is sampled with the collector's (psutil's children), and
the peak of the sum is reported beside the collector's own.

Bare baselines in the same run, weighed the same way (with the same interpreter): a bare Python interpreter, and one
that has imported the collector's code (`services.collector.app`) and does nothing else,
which separates the cost of the code from the cost of running it.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from _discovery_plane import Collector, ControlPlane, start_control_plane
from _discovery_report import REPO, Spread, write_results
from harness.control_plane import Child, settled_rss
from harness.machine import machine, markdown_table

sys.path.insert(0, str(REPO))
from tests.deploy.extras import closure, install_into

TARGETS = "127.0.1.0/24"
# 20 ports below the ephemeral range, where no other local process is likely to listen.
PORTS = tuple(range(23001, 23041, 2))
LISTENER_HOSTS = (10, 64, 128, 250)
LISTENER_PORTS = ((23001, "ssh"), (23021, "http"), (23039, "ssh"))
PROBES = "tcp,banners"
PASSWORD = "rss-bench-password"
NAME = "edge-rss"
GOAL_MIB = 60
SAMPLE_SECONDS = 0.1
RUN_TIMEOUT = 60.0
LISTENERS = Path(__file__).parent / "_discovery_listeners.py"
BARE = {
    "bare python": "import sys; sys.stdin.read()",
    "python + collector imports": "import services.collector.app, sys; sys.stdin.read()",
}


def _mib(value: float) -> float:
    return round(value / 2**20, 2)


def listener_specs(targets: str) -> list[str]:
    network = ipaddress.ip_network(targets)
    return [
        f"{network.network_address + host}:{port}:{kind}" for host in LISTENER_HOSTS for port, kind in LISTENER_PORTS
    ]


# --- weighing -----------------------------------------------------------------------------------
def bare_rss(python: str, code: str) -> int:
    """Settled RSS of `python -c code` (it waits on stdin, so closing stdin ends it)."""
    process = subprocess.Popen([python, "-c", code], stdin=subprocess.PIPE)
    try:
        return asyncio.run(settled_rss(process.pid, timeout=20)).rss
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def scan_once(plane: ControlPlane, collector: Collector) -> dict[str, Any]:
    """Idle RSS, then one `discoveries run --wait` with the collector's RSS sampled every 100 ms."""
    assert collector.process is not None
    pid = collector.process.pid
    idle = asyncio.run(settled_rss(pid, check=lambda: _alive(collector)))
    process = psutil.Process(pid)
    full = process.memory_full_info()  # reads smaps: once, while idle, never while sampling
    cpu_before = sum(process.cpu_times()[:2])
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = plane.ctl("discoveries", "run", "rss", "--wait", "--json", check=False)
        except Exception as exc:  # the sampler below reports it
            outcome["error"] = exc

    runner = threading.Thread(target=run, name="outpostctl")
    samples: list[int] = []
    totals: list[int] = []  # the collector and its scan worker processes, if any
    started = time.monotonic()
    runner.start()
    while runner.is_alive() and time.monotonic() - started < RUN_TIMEOUT + 10:
        rss = process.memory_info().rss
        samples.append(rss)
        totals.append(rss + _children_rss(process))
        time.sleep(SAMPLE_SECONDS)
    runner.join(5)
    seconds = time.monotonic() - started
    if "error" in outcome or "result" not in outcome:
        raise RuntimeError(f"outpostctl discoveries run failed: {outcome.get('error', 'still running')}")
    result = outcome["result"]
    if result.returncode != 0:
        raise RuntimeError(f"the run did not succeed ({result.returncode}): {result.stderr}{result.stdout}")
    summary = json.loads(result.stdout)
    return {
        "idle_rss_bytes": idle.rss,
        "idle_settled": idle.settled,
        "idle_uss_bytes": full.uss,
        "idle_pss_bytes": full.pss,
        "peak_rss_bytes": max(samples),
        "peak_with_workers_rss_bytes": max(totals),
        "median_rss_bytes": int(Spread.of(samples).median),
        "samples": len(samples),
        "run_seconds": round(seconds, 2),
        "collector_cpu_seconds": round(sum(process.cpu_times()[:2]) - cpu_before, 3),
        "state": summary.get("state"),
        "targets_total": summary.get("targets_total"),
        "devices_found": summary.get("devices_found"),
    }


def _children_rss(process: psutil.Process) -> int:
    total = 0
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:  # ended between the listing and the read
            continue
    return total


def _alive(collector: Collector) -> None:
    assert collector.process is not None
    if not collector.process.alive():
        raise RuntimeError(f"collector exited:\n{collector.process.log()[-3000:]}")


# --- the run ------------------------------------------------------------------------------------
def collector_python(venv: str, workdir: Path) -> str:
    """The interpreter the collector runs on: this venv's, or a scratch one like its image's."""
    if venv == "dev":
        return sys.executable
    return str(install_into(workdir / "collector-venv", closure("collector")))


def enrolled_collector(plane: ControlPlane, workdir: Path, python: str, scan_workers: int) -> Collector:
    program = [python, "-c", "from services.collector.app import main; main()"]
    collector = Collector(
        workdir,
        NAME,
        [plane.url("grpc")],
        PASSWORD,
        zone="lab",
        program=program,
        extra_args=["--scan-workers", str(scan_workers)],
    ).start()
    collector.wait_state("pending", timeout=60)
    plane.ctl(
        "collectors",
        "register",
        NAME,
        "--username",
        collector.username,
        "--password-stdin",
        "--enable",
        stdin=PASSWORD + "\n",
    )
    collector.wait_state("enabled", timeout=60)
    return collector


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    python = collector_python(args.venv, workdir)
    results: dict[str, Any] = {
        "figure": "collector_scan_rss",
        "machine": machine(),
        "settings": {
            "targets": args.targets,
            "ports": list(PORTS),
            "probes": PROBES,
            "listeners": listener_specs(args.targets),
            "repeats": args.repeats,
            "sample_interval_seconds": SAMPLE_SECONDS,
            "transport": "grpc",
            "goal_mib": GOAL_MIB,
            "venv": args.venv,
            "scan_workers": args.scan_workers,
        },
        "bare": {name: {"rss_bytes": bare_rss(python, code)} for name, code in BARE.items()},
    }
    specs = listener_specs(args.targets)
    ready = workdir / "listeners.ready"
    listeners = Child("listeners", [sys.executable, str(LISTENERS), f"--ready-file={ready}", *specs], workdir / "l.log")
    plane: ControlPlane | None = None
    collector: Collector | None = None
    try:
        listeners.start().wait_ready(ready)
        plane = start_control_plane(workdir)
        collector = enrolled_collector(plane, workdir, python, args.scan_workers)
        plane.ctl(
            "discoveries",
            "create",
            "rss",
            "--targets",
            args.targets,
            "--ports",
            ",".join(map(str, PORTS)),
            "--collector",
            NAME,
            "--probes",
            PROBES,
        )
        results["runs"] = []
        for repeat in range(args.repeats):
            figure = scan_once(plane, collector)
            results["runs"].append(figure)
            print(
                f"  repeat {repeat + 1}/{args.repeats}: idle {_mib(figure['idle_rss_bytes'])} MiB, "
                f"peak {_mib(figure['peak_rss_bytes'])} MiB, {figure['devices_found']} devices "
                f"in {figure['run_seconds']:.1f}s"
            )
        devices = json.loads(plane.ctl("devices", "list", "--json").stdout)
        found = {(d["ip"], port) for d in devices for port in d["open_ports"]}
        expected = {(ip, int(port)) for ip, port, _ in (spec.rsplit(":", 2) for spec in specs)}
        results["inventory"] = {"devices": len(devices), "listeners_found": len(expected & found)}
        if not expected <= found:
            raise RuntimeError(f"the inventory misses listeners {sorted(expected - found)}")
    finally:
        if collector is not None:
            collector.stop()
        if plane is not None:
            plane.stop()
        listeners.stop()
    runs = results["runs"]
    results["summary"] = {
        key: Spread.of([_mib(r[field]) for r in runs]).as_json(2)
        for key, field in (
            ("idle", "idle_rss_bytes"),
            ("idle_uss", "idle_uss_bytes"),
            ("peak", "peak_rss_bytes"),
            ("median", "median_rss_bytes"),
            ("peak_with_workers", "peak_with_workers_rss_bytes"),
        )
    }
    results["summary"]["run_seconds"] = Spread.of([r["run_seconds"] for r in runs]).as_json(2)
    results["goal_met"] = results["summary"]["peak"]["max"] < GOAL_MIB
    return results


def table(results: dict[str, Any]) -> str:
    summary = results["summary"]

    def spread(key: str) -> str:
        figure = summary[key]
        return f"{figure['median']:.1f} ({figure['min']:.1f}-{figure['max']:.1f})"

    rows = [
        ("outpost-collector, idle before the scan", spread("idle")),
        ("outpost-collector, idle: USS (pages no other process shares)", spread("idle_uss")),
        ("outpost-collector, scanning: median of 100 ms samples", spread("median")),
        ("outpost-collector, scanning: peak", spread("peak")),
        ("outpost-collector and its scan workers, scanning: peak of the sum", spread("peak_with_workers")),
        *((f"{name} (one process)", f"{_mib(bare['rss_bytes']):.1f}") for name, bare in results["bare"].items()),
    ]
    table = markdown_table([("RSS", "MiB, median (min-max) over repeats"), *rows])
    seconds = summary["run_seconds"]
    return (
        f"{table}\n`discoveries run --wait`: {seconds['median']:.1f}s ({seconds['min']:.1f}-{seconds['max']:.1f}); "
        f"goal: peak < {GOAL_MIB} MiB: {'met' if results['goal_met'] else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=TARGETS, help="a loopback CIDR (127.0.0.0/8 only)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "collector_scan_rss.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    parser.add_argument("--scan-workers", type=int, default=1, help="the collector's --scan-workers (default 1)")
    parser.add_argument(
        "--venv",
        choices=("image", "dev"),
        default="image",
        help="run the collector on its image's packages only (default) or on this development venv",
    )
    args = parser.parse_args()
    try:
        network = ipaddress.ip_network(args.targets)
    except ValueError as exc:
        parser.error(f"--targets: {exc}")
    if network.version != 4 or not network.is_loopback or network.num_addresses < max(LISTENER_HOSTS) + 1:
        parser.error(f"--targets must be a loopback CIDR of at least {max(LISTENER_HOSTS) + 1} addresses")
    if args.repeats < 1:
        parser.error("--repeats must be positive")
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-rss-"))
    started = time.monotonic()
    try:
        print(
            f"{args.targets} x {len(PORTS)} ports, probes {PROBES}, {args.repeats} repeats, {args.venv} venv, "
            f"--scan-workers {args.scan_workers}"
        )
        results = run(args, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    print()
    print(table(results))
    write_results(args.json, results)
    print(f"wrote {args.json} ({results['wall_seconds']:.0f}s)")


if __name__ == "__main__":
    main()
