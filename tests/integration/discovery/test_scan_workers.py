"""Scan worker processes: the same devices as one process; a worker that dies loses no host.

Every address of a loopback /26 gets a port that never answers (a listener whose accept
queue is full: filtered), so every host is still being scanned for the plan's timeout;
a few have open ports; the other ports are refused. 64 hosts x 17 ports is past
`engine.MIN_PAIRS_FOR_WORKERS`, so `scan_workers=2` does use two processes (the run's
`discovery_finished` log says how many).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest
from structlog.testing import capture_logs

from services.collector.discovery import DeviceObservation, DiscoveryPlan, discover, scan_workers
from services.collector.discovery.engine import MIN_PAIRS_FOR_WORKERS
from services.collector.discovery.host_keys import HostKeyStore
from services.collector.discovery.model import PortState
from services.collector.discovery.scan_workers import WORKER_MODULE
from tests.integration.discovery.conftest import Scan
from tests.peers.process import free_port, wait_until
from tests.peers.tcp import TcpListeners

NETWORK = "127.0.0.128/26"
HOSTS = [f"127.0.0.{last}" for last in range(128, 192)]


@pytest.fixture
def plan(tcp_listeners: TcpListeners) -> Iterator[DiscoveryPlan]:
    silent = tcp_listeners.filtered(HOSTS[0])
    for host in HOSTS[1:]:
        tcp_listeners.filtered(host, silent)
    shown = tcp_listeners.open("127.0.0.130")
    tcp_listeners.open("127.0.0.170", shown)
    other = tcp_listeners.open("127.0.0.170")
    closed = {free_port("127.0.0.128") for _ in range(14)} - {silent, shown, other}
    ports = (silent, shown, other, *sorted(closed))
    assert len(HOSTS) * len(ports) >= MIN_PAIRS_FOR_WORKERS
    yield DiscoveryPlan(targets=(NETWORK,), exclusions=(), ports=ports, probes=frozenset({"tcp"}), timeout=1.5)


def comparable(devices: dict[str, DeviceObservation]) -> dict[str, Any]:
    """The devices without what differs between any two runs (times)."""
    return {ip: replace(device, rtt_ms=0.0, observed_at_unix_ms=0) for ip, device in devices.items()}


def _worker_processes() -> list[psutil.Process]:
    return [child for child in psutil.Process().children(recursive=True) if WORKER_MODULE in " ".join(_cmdline(child))]


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _finished(logs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(entry for entry in logs if entry["event"] == "discovery_finished")


async def test_two_worker_processes_find_what_one_process_finds(plan: DiscoveryPlan, scan: Scan) -> None:
    alone = await scan(plan)
    with capture_logs() as logs:
        shared = await scan(plan, scan_workers=2)

    assert _finished(logs)["scan_workers"] == 2
    assert comparable(shared) == comparable(alone)
    assert set(shared) == set(HOSTS)
    assert {p.port for p in shared["127.0.0.170"].ports if p.state is PortState.OPEN} == set(plan.ports[1:3])
    assert all(len(device.ports) >= 1 for device in shared.values())  # the silent port: filtered everywhere
    assert _worker_processes() == []


async def test_a_worker_killed_mid_scan_is_reported_and_its_hosts_scanned_again(
    plan: DiscoveryPlan, scan: Scan, host_keys: HostKeyStore
) -> None:
    alone = await scan(plan)

    async def kill_one_worker() -> int:
        await asyncio.to_thread(wait_until, lambda: len(_worker_processes()) == 2, "two scan workers")
        victim = _worker_processes()[0]
        victim.send_signal(signal.SIGKILL)
        return victim.pid

    with capture_logs() as logs:
        killer = asyncio.create_task(kill_one_worker())
        shared = {device.ip: device async for device in discover(plan, host_keys=host_keys, scan_workers=2)}
        victim = await killer

    lost = [entry for entry in logs if entry["event"] == "scan_worker_lost"]
    assert len(lost) == 1 and lost[0]["pid"] == victim and lost[0]["exit_code"] == -signal.SIGKILL
    assert lost[0]["hosts_rescanned"] > 0
    assert _finished(logs)["scan_workers_lost"] == 1
    assert comparable(shared) == comparable(alone)


async def test_cancelling_a_scan_ends_its_worker_processes(plan: DiscoveryPlan, host_keys: HostKeyStore) -> None:
    async def consume() -> None:
        async for _ in discover(plan, host_keys=host_keys, scan_workers=2):
            pass

    task = asyncio.create_task(consume())
    await asyncio.to_thread(wait_until, lambda: len(_worker_processes()) == 2, "two scan workers")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _worker_processes() == []


async def test_workers_that_exit_at_once_lose_no_host(
    plan: DiscoveryPlan, scan: Scan, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = await scan(plan)
    monkeypatch.setattr(scan_workers, "WORKER_COMMAND", (sys.executable, "-c", "raise SystemExit(3)"))
    with capture_logs() as logs:
        shared = await scan(plan, scan_workers=2)

    lost = [entry for entry in logs if entry["event"] == "scan_worker_lost"]
    assert [entry["exit_code"] for entry in lost] == [3, 3]
    assert sum(entry["hosts_rescanned"] for entry in lost) == len(HOSTS)
    assert comparable(shared) == comparable(alone)


async def test_workers_that_cannot_start_leave_the_scan_in_process(
    plan: DiscoveryPlan, scan: Scan, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    alone = await scan(plan)
    monkeypatch.setattr(scan_workers, "WORKER_COMMAND", (str(tmp_path / "no-such-python"), "-m", WORKER_MODULE))
    with capture_logs() as logs:
        shared = await scan(plan, scan_workers=2)

    assert any(entry["event"] == "scan_workers_unavailable" for entry in logs)
    assert _finished(logs)["scan_workers"] == 0
    assert comparable(shared) == comparable(alone)
