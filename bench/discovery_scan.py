"""Discovery scan time: Outpost's engine against nmap on the same loopback targets and ports.

    .venv/bin/python bench/discovery_scan.py [--targets 127.0.2.0/24] [--repeats 5]
        [--firewalled 127.0.4.0/22] [--firewalled-repeats 5] [--no-firewalled]
        [--prototypes] [--profile] [--json bench/results/discovery_scan.json]

Theory of operation
-------------------
A child process (`_discovery_listeners.py`) serves 18 real listeners on six addresses of
the target /24, on ports of the scanned list; every other pair is refused by the kernel
(on loopback every address is a live host, so every pair gets an answer). Then, per
repeat, each scanner covers the same targets x 100 ports:

- engine tcp      `discover()` in this process, probes {"tcp"}, the plan's defaults
                  (concurrency 256, timeout 1 s), the way the collector runs a job;
- nmap            `nmap -T4 -sT -n -Pn -p <ports> -oX - <targets>`, a child process,
                  timed from spawn to exit (its start-up is part of what a user waits for;
                  the elapsed time nmap reports itself, without it, is kept too);
- bare python     the floor of any Python connect scan: one thread looping socket(),
                  connect_ex(), SO_ERROR, close() over the same pairs, no event loop;
- engine, 2 worker processes  `discover(..., scan_workers=2)`: the connects in two worker
                  processes, whole hosts each (`--scan-workers 2`); their CPU, start-up
                  included, is counted with the bench process's;
- engine banners  `discover()` with {"tcp", "banners"}: for information, not compared.

With `--prototypes`, three more rows for judging where the engine's time goes and what
would help: the engine with each variant of `_discovery_prototypes.py` swapped in
(a lean connect worker; half the workers on a second thread), and the bare loop split
over two processes (what two cores could give at best, were the work shared without
a GIL). With `--profile`, one more engine scan runs under cProfile and its top
functions by own time are printed and kept in the JSON.

The firewalled regime (unless `--no-firewalled`; needs nftables, `make system-deps`, and
the right to change the ruleset: without them it is skipped, saying why on the output
and in the JSON) scans another loopback range behind real drop rules:
`tests/peers/nft_drop.py` adds one nftables table of this run's own that drops TCP to
three of the scanned ports on the whole range, and deletes it in a `finally`. Every host
also has one port that is refused (closed), and a listener child serves one more port
on a few hosts (open). Engine (`{"tcp"}`, the plan's defaults: 256 in flight, 1 s
timeout) and `nmap -T4 -sT -n -Pn` scan the same pairs, alternating which goes first;
every repeat asserts that both give every (address, port) the same state, open,
filtered or closed, and that the filtered ones are exactly the dropped ones.

The order of the first four rotates from repeat to repeat, and one untimed warm-up of
each comes first. Wall time and CPU time (user, system) are taken for each; the
headline is the median of the per-repeat ratios engine/nmap (paired, so a burst of load
from elsewhere hits both sides of one ratio) with its min-max. Every repeat asserts that
the engine and nmap found exactly the same open (address, port) set, and that it holds
every listener started here (every other scanner must agree with nmap too).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import ipaddress
import multiprocessing
import os
import pstats
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from _discovery_prototypes import VARIANTS, swapped
from _discovery_report import REPO, Spread, write_results
from harness.control_plane import Child
from harness.machine import machine, markdown_table

from services.collector.discovery import DiscoveryPlan, HostKeyStore, discover
from services.collector.discovery.model import PortState

sys.path.insert(0, str(REPO))
from tests.peers import nft_drop

TARGETS = "127.0.2.0/24"
# 100 ports below the ephemeral range (32768+), where no other local process is
# likely to listen while the bench runs.
PORTS = tuple(range(21001, 21200, 2))
LISTENER_HOSTS = (5, 17, 80, 130, 200, 254)
LISTENER_PORTS = ((21001, "ssh"), (21051, "http"), (21199, "ssh"))
NMAP = ["nmap", "-T4", "-sT", "-n", "-Pn"]
NMAP_TIMEOUT = 300
FIREWALLED_NMAP_TIMEOUT = 1800  # nmap -T4 took 311 s on a dropped /22 x 3 ports
LISTENERS = Path(__file__).parent / "_discovery_listeners.py"
WORKERS = 2  # --scan-workers for the engine's second row: this machine's cores
COMPARED = ("engine tcp", "nmap", "bare python", f"engine tcp, {WORKERS} worker processes")
FIREWALLED = "127.0.4.0/22"
FIREWALLED_DROPPED = (24001, 24003, 24005)
FIREWALLED_CLOSED = 24007
FIREWALLED_OPEN = 24009  # a listener on FIREWALLED_HOSTS, refused elsewhere
FIREWALLED_HOSTS = (7, 300, 1000)
_LINGER_RST = struct.pack("ii", 1, 0)

OpenSet = set[tuple[str, int]]
States = dict[tuple[str, int], str]  # (address, port) -> "open" | "closed" | "filtered"


@dataclass(frozen=True)
class Sample:
    """One timed scan: wall and CPU seconds, and the open (address, port) pairs it found."""

    wall: float
    user: float
    system: float
    found: OpenSet = field(default_factory=set)
    reported: float = 0.0  # nmap only: the scan time it reports itself, without its start-up
    states: States = field(default_factory=dict)  # the firewalled regime: every pair's state

    @property
    def cpu(self) -> float:
        return self.user + self.system


def listener_specs(targets: str) -> list[str]:
    network = ipaddress.ip_network(targets)
    return [
        f"{network.network_address + host}:{port}:{kind}"
        for host in LISTENER_HOSTS
        if host < network.num_addresses
        for port, kind in LISTENER_PORTS
    ]


# --- the scanners ---------------------------------------------------------------------------
async def _engine(targets: str, probes: frozenset[str], keys: HostKeyStore, workers: int) -> Sample:
    plan = DiscoveryPlan(targets=(targets,), exclusions=(), ports=PORTS, probes=probes)
    found: OpenSet = set()
    before, started = os.times(), time.perf_counter()
    async for device in discover(plan, host_keys=keys, scan_workers=workers):
        found.update((device.ip, port.port) for port in device.ports)
    wall, after = time.perf_counter() - started, os.times()
    # The worker processes' CPU (start-up included) is the run's too: they have exited by now.
    user = after.user - before.user + after.children_user - before.children_user
    system = after.system - before.system + after.children_system - before.children_system
    return Sample(wall, user, system, found)


def engine(targets: str, probes: frozenset[str], keys: HostKeyStore, workers: int = 1) -> Sample:
    return asyncio.run(_engine(targets, probes, keys, workers))


def nmap(targets: str) -> Sample:
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(
        [*NMAP, "-p", ",".join(map(str, PORTS)), "-oX", "-", targets],
        capture_output=True,
        text=True,
        check=True,
        timeout=NMAP_TIMEOUT,
    )
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    found, reported = nmap_open(done.stdout)
    return Sample(wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, found, reported)


def nmap_open(xml: str) -> tuple[OpenSet, float]:
    """The open (address, port) pairs in nmap's XML, and the elapsed seconds it reports."""
    found: OpenSet = set()
    root = ET.fromstring(xml)
    finished = root.find("runstats/finished")
    elapsed = float(finished.get("elapsed", "0")) if finished is not None else 0.0
    for host in root.iter("host"):
        address = host.find("address")
        assert address is not None
        for port in host.iter("port"):
            state = port.find("state")
            if state is not None and state.get("state") == "open":
                found.add((str(address.get("addr")), int(str(port.get("portid")))))
    return found, elapsed


def bare_python(targets: str) -> Sample:
    """The same pairs, one after another in one thread: what Python costs without the engine."""
    hosts = [str(ip) for ip in ipaddress.ip_network(targets)]
    before, started = os.times(), time.perf_counter()
    found = _connect_loop(hosts)
    wall, after = time.perf_counter() - started, os.times()
    return Sample(wall, after.user - before.user, after.system - before.system, found)


def _connect_loop(hosts: list[str]) -> OpenSet:
    found: OpenSet = set()
    for ip in hosts:
        for port in PORTS:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            try:
                error = sock.connect_ex((ip, port))
                if error == 115:  # EINPROGRESS: on loopback the answer is already there
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error == 0:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                    found.add((ip, port))
            finally:
                sock.close()
    return found


def _connect_loop_child(hosts: list[str], go: Any, results: Any) -> None:
    results.put("ready")
    go.wait()
    results.put(_connect_loop(hosts))


def bare_python_two_processes(targets: str) -> Sample:
    """The bare loop split over two processes (started and ready beforehand, timed from a shared go).

    CPU is not taken (the children's start-up would be in it): the wall time alone says
    whether two cores were there to share the kernel's work.
    """
    hosts = [str(ip) for ip in ipaddress.ip_network(targets)]
    spawn = multiprocessing.get_context("spawn")
    go, results = spawn.Event(), spawn.Queue()
    children = [spawn.Process(target=_connect_loop_child, args=(hosts[i::2], go, results)) for i in range(2)]
    for child in children:
        child.start()
    try:
        for _ in children:
            results.get(timeout=NMAP_TIMEOUT)  # both imported and waiting on `go`
        started = time.perf_counter()
        go.set()
        found: OpenSet = set()
        for _ in children:
            found |= results.get(timeout=NMAP_TIMEOUT)
        wall = time.perf_counter() - started
    finally:
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
    return Sample(wall, 0.0, 0.0, found)


def engine_variant(variant: str, targets: str, keys: HostKeyStore) -> Sample:
    with swapped(variant):
        return engine(targets, frozenset({"tcp"}), keys)


def profile_engine(targets: str, keys: HostKeyStore, top: int = 15) -> str:
    """One engine scan under cProfile: the top functions by own time (cProfile slows the scan ~2x)."""
    profiler = cProfile.Profile()
    profiler.enable()
    engine(targets, frozenset({"tcp"}), keys)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- the firewalled regime ------------------------------------------------------------------
def firewalled_ports() -> tuple[int, ...]:
    return (*FIREWALLED_DROPPED, FIREWALLED_CLOSED, FIREWALLED_OPEN)


def firewalled_listener_specs(targets: str) -> list[str]:
    network = ipaddress.ip_network(targets)
    hosts = [host for host in FIREWALLED_HOSTS if host < network.num_addresses]
    return [f"{network.network_address + host}:{FIREWALLED_OPEN}:http" for host in hosts]


def expected_states(targets: str) -> States:
    """What drop rules, refusals and listeners make of every pair: what both scanners must say."""
    listening = {spec.rsplit(":", 2)[0] for spec in firewalled_listener_specs(targets)}
    states: States = {}
    for address in ipaddress.ip_network(targets):
        ip = str(address)
        for port in FIREWALLED_DROPPED:
            states[ip, port] = "filtered"
        states[ip, FIREWALLED_CLOSED] = "closed"
        states[ip, FIREWALLED_OPEN] = "open" if ip in listening else "closed"
    return states


async def _engine_states(targets: str, keys: HostKeyStore) -> Sample:
    ports = firewalled_ports()
    plan = DiscoveryPlan(targets=(targets,), exclusions=(), ports=ports, probes=frozenset({"tcp"}))
    listed: dict[str, dict[int, PortState]] = {}
    before, started = os.times(), time.perf_counter()
    async for device in discover(plan, host_keys=keys):
        listed[device.ip] = {port.port: port.state for port in device.ports}
    wall, after = time.perf_counter() - started, os.times()
    states: States = {}
    for address in ipaddress.ip_network(targets):
        ip = str(address)
        for port in ports:
            # A host that never answered is not a device: all its ports went unanswered.
            state = listed[ip].get(port) if ip in listed else PortState.FILTERED
            states[ip, port] = "closed" if state is None else state.value.lower()
    found = {pair for pair, state in states.items() if state == "open"}
    return Sample(wall, after.user - before.user, after.system - before.system, found, states=states)


def engine_firewalled(targets: str, keys: HostKeyStore) -> Sample:
    return asyncio.run(_engine_states(targets, keys))


def nmap_firewalled(targets: str) -> Sample:
    ports = firewalled_ports()
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(
        [*NMAP, "-p", ",".join(map(str, ports)), "-oX", "-", targets],
        capture_output=True,
        text=True,
        check=True,
        timeout=FIREWALLED_NMAP_TIMEOUT,
    )
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    states, reported = nmap_states(done.stdout, ports)
    found = {pair for pair, state in states.items() if state == "open"}
    return Sample(
        wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, found, reported, states=states
    )


def nmap_states(xml: str, ports: tuple[int, ...]) -> tuple[States, float]:
    """Every (address, port)'s state in nmap's XML (ports it folds into <extraports> too), and its elapsed time."""
    root = ET.fromstring(xml)
    finished = root.find("runstats/finished")
    elapsed = float(finished.get("elapsed", "0")) if finished is not None else 0.0
    states: States = {}
    for host in root.iter("host"):
        address = host.find("address")
        assert address is not None
        ip = str(address.get("addr"))
        listed: dict[int, str] = {}
        for port in host.iter("port"):
            state = port.find("state")
            assert state is not None
            listed[int(str(port.get("portid")))] = str(state.get("state"))
        folded = host.findall("ports/extraports")
        if len(folded) > 1 and len(listed) < len(ports):
            raise SystemExit(f"nmap folded {ip}'s ports into several states: cannot tell which is which")
        rest = str(folded[0].get("state")) if folded else "missing"
        for port in ports:
            states[ip, port] = listed.get(port, rest)
    return states, elapsed


def firewalled(args: argparse.Namespace, keys: HostKeyStore, workdir: Path) -> dict[str, Any]:
    """Engine against nmap behind real nftables drop rules; every pair's state must agree."""
    why_not = nft_drop.unavailable()
    if why_not:
        print(f"firewalled regime SKIPPED: {why_not}")
        return {"skipped": why_not}
    targets = args.firewalled
    expected = expected_states(targets)
    specs = firewalled_listener_specs(targets)
    ready = workdir / "firewalled-listeners.ready"
    listeners = Child(
        "firewalled listeners", [sys.executable, str(LISTENERS), f"--ready-file={ready}", *specs], workdir / "fl.log"
    )
    scanners: dict[str, Callable[[], Sample]] = {
        "engine tcp": lambda: engine_firewalled(targets, keys),
        "nmap": lambda: nmap_firewalled(targets),
    }
    samples: dict[str, list[Sample]] = {name: [] for name in scanners}
    print(f"firewalled: {targets} x {len(firewalled_ports())} ports, {FIREWALLED_DROPPED} dropped")
    try:
        listeners.start().wait_ready(ready)
        with nft_drop.dropping(targets, FIREWALLED_DROPPED) as table:
            print(f"  nftables table inet {table}: tcp dport {set(FIREWALLED_DROPPED)} to {targets} dropped")
            for repeat in range(args.firewalled_repeats):
                order = list(scanners) if repeat % 2 == 0 else list(reversed(scanners))
                for name in order:
                    samples[name].append(scanners[name]())
                for name, kept in samples.items():
                    if kept[-1].states != expected:
                        wrong = sorted(pair for pair in expected if kept[-1].states.get(pair) != expected[pair])
                        raise SystemExit(
                            f"firewalled repeat {repeat + 1}: {name} disagrees on {len(wrong)} pairs, e.g. "
                            + ", ".join(
                                f"{pair}: {kept[-1].states.get(pair)} not {expected[pair]}" for pair in wrong[:5]
                            )
                        )
                line = ", ".join(f"{name} {samples[name][-1].wall:.2f}s" for name in scanners)
                print(f"  firewalled repeat {repeat + 1}/{args.firewalled_repeats}: {line}; states agree")
    finally:
        listeners.stop()
    counts = {
        state: sum(1 for value in expected.values() if value == state) for state in ("open", "closed", "filtered")
    }
    figures: dict[str, Any] = {}
    nmap_samples = samples["nmap"]
    for name, kept in samples.items():
        figures[name] = {
            "wall_seconds": Spread.of([s.wall for s in kept]).as_json(),
            "cpu_seconds": Spread.of([s.cpu for s in kept]).as_json(),
            "user_seconds": Spread.of([s.user for s in kept]).as_json(),
            "system_seconds": Spread.of([s.system for s in kept]).as_json(),
            "open_ports": len(kept[-1].found),
        }
        if name != "nmap":
            figures[name]["wall_ratio_to_nmap"] = Spread.of(
                [s.wall / n.wall for s, n in zip(kept, nmap_samples, strict=True)]
            ).as_json()
            figures[name]["cpu_ratio_to_nmap"] = Spread.of(
                [s.cpu / n.cpu for s, n in zip(kept, nmap_samples, strict=True) if n.cpu] or [0.0]
            ).as_json()
    figures["nmap"]["reported_elapsed_seconds"] = Spread.of([s.reported for s in nmap_samples]).as_json()
    return {
        "targets": targets,
        "ports": list(firewalled_ports()),
        "dropped_ports": list(FIREWALLED_DROPPED),
        "listeners": specs,
        "repeats": args.firewalled_repeats,
        "pairs": counts,
        "states_identical": True,
        "scanners": figures,
    }


# --- the run --------------------------------------------------------------------------------
def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    described = machine()
    specs = listener_specs(args.targets)
    expected = {(ip, int(port)) for ip, port, _ in (spec.rsplit(":", 2) for spec in specs)}
    keys = HostKeyStore(workdir / "host-keys")
    scanners: dict[str, Callable[[], Sample]] = {
        "engine tcp": lambda: engine(args.targets, frozenset({"tcp"}), keys),
        "nmap": lambda: nmap(args.targets),
        "bare python": lambda: bare_python(args.targets),
        f"engine tcp, {WORKERS} worker processes": lambda: engine(args.targets, frozenset({"tcp"}), keys, WORKERS),
    }
    if not args.no_banners:
        scanners["engine tcp+banners"] = lambda: engine(args.targets, frozenset({"tcp", "banners"}), keys)
    if args.prototypes:
        for variant in VARIANTS:
            scanners[f"engine tcp, {variant} (prototype)"] = functools.partial(
                engine_variant, variant, args.targets, keys
            )
        scanners["bare python, 2 processes"] = lambda: bare_python_two_processes(args.targets)
    samples: dict[str, list[Sample]] = {name: [] for name in scanners}
    ready = workdir / "listeners.ready"
    listeners = Child("listeners", [sys.executable, str(LISTENERS), f"--ready-file={ready}", *specs], workdir / "l.log")
    try:
        listeners.start().wait_ready(ready)
        for name, scan in scanners.items():
            scan()  # warm-up: imports, page cache, the listeners' first accepts
            print(f"  warmed up {name}")
        for repeat in range(args.repeats):
            turn = repeat % len(COMPARED)
            order = [*COMPARED[turn:], *COMPARED[:turn]]
            order += [name for name in scanners if name not in COMPARED]
            for name in order:
                samples[name].append(scanners[name]())
            check_open_sets(samples, expected, repeat)
            line = ", ".join(f"{name} {samples[name][-1].wall:.2f}s" for name in scanners)
            print(f"  repeat {repeat + 1}/{args.repeats}: {line}")
        profile = profile_engine(args.targets, keys) if args.profile else ""
    finally:
        listeners.stop()
    figure = results(args, samples, expected, described)
    if profile:
        figure["engine_profile"] = profile.splitlines()
    if args.firewalled:
        figure["firewalled"] = firewalled(args, keys, workdir)
    return figure


def check_open_sets(samples: dict[str, list[Sample]], expected: OpenSet, repeat: int) -> None:
    """Fail the run unless every scanner found exactly nmap's open set, and it holds every listener."""
    theirs = samples["nmap"][-1].found
    missing = expected - theirs
    if missing:
        raise SystemExit(f"repeat {repeat + 1}: nmap missed listeners {sorted(missing)}")
    for name, kept in samples.items():
        ours = kept[-1].found
        if ours != theirs:
            raise SystemExit(
                f"repeat {repeat + 1}: open ports differ: {name} only {sorted(ours - theirs)}, "
                f"nmap only {sorted(theirs - ours)}"
            )


def results(
    args: argparse.Namespace, samples: dict[str, list[Sample]], expected: OpenSet, described: dict[str, Any]
) -> dict[str, Any]:
    nmap_samples = samples["nmap"]
    figures: dict[str, Any] = {}
    for name, kept in samples.items():
        figures[name] = {
            "wall_seconds": Spread.of([s.wall for s in kept]).as_json(),
            "cpu_seconds": Spread.of([s.cpu for s in kept]).as_json(),
            "user_seconds": Spread.of([s.user for s in kept]).as_json(),
            "system_seconds": Spread.of([s.system for s in kept]).as_json(),
            "open_ports": len(kept[-1].found),
        }
        if name != "nmap":
            figures[name]["wall_ratio_to_nmap"] = Spread.of(
                [s.wall / n.wall for s, n in zip(kept, nmap_samples, strict=True)]
            ).as_json()
            if kept[0].cpu:
                figures[name]["cpu_ratio_to_nmap"] = Spread.of(
                    [s.cpu / n.cpu for s, n in zip(kept, nmap_samples, strict=True)]
                ).as_json()
    figures["nmap"]["reported_elapsed_seconds"] = Spread.of([s.reported for s in nmap_samples]).as_json()
    figures["engine tcp"]["wall_ratio_to_nmap_reported"] = Spread.of(
        [s.wall / n.reported for s, n in zip(samples["engine tcp"], nmap_samples, strict=True) if n.reported] or [0.0]
    ).as_json()
    pairs = ipaddress.ip_network(args.targets).num_addresses * len(PORTS)
    return {
        "figure": "discovery_scan",
        "machine": described,
        "settings": {
            "targets": args.targets,
            "ports": len(PORTS),
            "port_list": f"{PORTS[0]}-{PORTS[-1]} step {PORTS[1] - PORTS[0]}",
            "pairs": pairs,
            "listeners": sorted(f"{ip}:{port}" for ip, port in expected),
            "repeats": args.repeats,
            "engine_plan": "concurrency 256, rate unlimited, timeout 1 s (the plan defaults)",
            "nmap": " ".join(NMAP),
            "nmap_version": nmap_version(),
        },
        "open_sets_identical": True,
        "scanners": figures,
    }


def nmap_version() -> str:
    done = subprocess.run(["nmap", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0] if done.stdout else ""


def _spread(figure: dict[str, Any] | None, digits: int = 2) -> str:
    if figure is None:
        return "-"
    return f"{figure['median']:.{digits}f} ({figure['min']:.{digits}f}-{figure['max']:.{digits}f})"


def table(results: dict[str, Any]) -> str:
    """Medians with (min-max) over the repeats; ratios are medians of per-repeat ratios."""
    header = ("scanner", "wall s", "cpu s (user+sys)", "wall / nmap", "cpu / nmap", "open")
    rows = []
    for name, figure in results["scanners"].items():
        cpu = figure["cpu_seconds"]["median"]
        split = f"{figure['user_seconds']['median']:.2f}+{figure['system_seconds']['median']:.2f}"
        unit = "1" if name == "nmap" else "-"
        rows.append(
            (
                name,
                _spread(figure["wall_seconds"], 3),
                f"{cpu:.3f} ({split})" if cpu else "-",
                _spread(figure["wall_ratio_to_nmap"]) if "wall_ratio_to_nmap" in figure else unit,
                _spread(figure["cpu_ratio_to_nmap"]) if "cpu_ratio_to_nmap" in figure else unit,
                str(figure["open_ports"]),
            )
        )
    return markdown_table([header, *rows])


def firewalled_table(regime: dict[str, Any]) -> str:
    header = ("scanner (firewalled)", "wall s", "cpu s (user+sys)", "wall / nmap", "cpu / nmap", "open")
    rows = []
    for name, figure in regime["scanners"].items():
        split = f"{figure['user_seconds']['median']:.2f}+{figure['system_seconds']['median']:.2f}"
        rows.append(
            (
                name,
                _spread(figure["wall_seconds"], 3),
                f"{figure['cpu_seconds']['median']:.3f} ({split})",
                _spread(figure["wall_ratio_to_nmap"]) if "wall_ratio_to_nmap" in figure else "1",
                _spread(figure["cpu_ratio_to_nmap"]) if "cpu_ratio_to_nmap" in figure else "1",
                str(figure["open_ports"]),
            )
        )
    pairs = regime["pairs"]
    return (
        markdown_table([header, *rows])
        + f"\n{regime['targets']}: {pairs['open']} open, {pairs['closed']} closed, {pairs['filtered']} filtered "
        "pairs; every repeat, both scanners gave every pair the same state"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=TARGETS, help="a loopback CIDR (127.0.0.0/8 only)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-banners", action="store_true", help="skip the informational tcp+banners scan")
    parser.add_argument(
        "--prototypes", action="store_true", help="also time the engine variants tried and the 2-process floor"
    )
    parser.add_argument("--profile", action="store_true", help="profile one more engine scan with cProfile")
    parser.add_argument(
        "--firewalled",
        default=FIREWALLED,
        help="the loopback CIDR scanned behind nftables drop rules (default %(default)s)",
    )
    parser.add_argument("--firewalled-repeats", type=int, default=5)
    parser.add_argument(
        "--no-firewalled", dest="firewalled", action="store_const", const="", help="skip the firewalled regime"
    )
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "discovery_scan.json")
    args = parser.parse_args()
    try:
        network = ipaddress.ip_network(args.targets)
    except ValueError as exc:
        parser.error(f"--targets: {exc}")
    if network.version != 4 or not network.is_loopback or network.num_addresses > 1024:
        parser.error("--targets must be a loopback CIDR of at most 1024 addresses")
    if args.repeats < 1 or args.firewalled_repeats < 1:
        parser.error("--repeats and --firewalled-repeats must be positive")
    if args.firewalled:
        try:
            walled = ipaddress.ip_network(args.firewalled)
        except ValueError as exc:
            parser.error(f"--firewalled: {exc}")
        if walled.version != 4 or not walled.is_loopback or walled.num_addresses > 4096 or walled.overlaps(network):
            parser.error("--firewalled must be a loopback CIDR of at most 4096 addresses, apart from --targets")
    if shutil.which("nmap") is None:
        raise SystemExit("nmap is not installed (make system-deps)")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and worse
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-scan-"))
    started = time.monotonic()
    try:
        print(f"{args.targets} x {len(PORTS)} ports, {args.repeats} repeats")
        results = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    print()
    print(table(results))
    engine = results["scanners"]["engine tcp"]
    engine_ratio = engine["wall_ratio_to_nmap"]["median"]
    reported = results["scanners"]["nmap"]["reported_elapsed_seconds"]["median"]
    print(
        f"nmap's own elapsed (no start-up): {reported:.2f}s; "
        f"engine / that: {engine['wall_ratio_to_nmap_reported']['median']:.2f}"
    )
    if "engine_profile" in results:
        print("\n" + "\n".join(results["engine_profile"][:40]))
    if "scanners" in results.get("firewalled", {}):
        print("\n" + firewalled_table(results["firewalled"]))
    print(f"\nengine/nmap wall (median of paired ratios): {engine_ratio:.2f} (goal <= 1.00); open sets identical")
    write_results(args.json, results)
    print(f"wrote {args.json} ({results['wall_seconds']:.0f}s)")


if __name__ == "__main__":
    main()
