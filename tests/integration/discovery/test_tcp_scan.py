"""The connect scan against real listeners on loopback, with nmap as the oracle.

Also: devices stream while the scan runs, at most `concurrency` connects are in flight,
the rate limit holds, and cancelling or running out of deadline closes every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import psutil
import pytest

from services.collector.discovery import DeadlineExceeded, DeviceObservation, DiscoveryPlan, Progress, discover
from services.collector.discovery.host_keys import HostKeyStore
from services.collector.discovery.model import PortState
from tests.integration.discovery.conftest import Scan
from tests.peers.process import free_port
from tests.peers.tcp import TcpListeners


def nmap_open_ports(
    targets: list[str], exclusions: list[str], ports: list[int]
) -> tuple[set[str], set[tuple[str, int]]]:
    """(hosts nmap lists, (ip, port) it finds open) for a connect scan without DNS or ping."""
    command = ["nmap", "-sT", "-n", "-Pn", "-p", ",".join(map(str, ports)), "-oX", "-"]
    command += ["--exclude", ",".join(exclusions), *targets]
    report = ET.fromstring(subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout)
    hosts, open_ports = set(), set()
    for host in report.iter("host"):
        address = host.find("address")
        assert address is not None
        ip = address.get("addr", "")
        hosts.add(ip)
        for port in host.iter("port"):
            state = port.find("state")
            if state is not None and state.get("state") == "open":
                open_ports.add((ip, int(port.get("portid", "0"))))
    return hosts, open_ports


async def test_open_ports_equal_what_nmap_finds_over_a_cidr_a_range_and_exclusions(
    tcp_listeners: TcpListeners, scan: Scan
) -> None:
    port_a = tcp_listeners.open("127.0.0.41")
    port_b = tcp_listeners.open("127.0.0.41")
    port_c = tcp_listeners.open("127.0.0.46")
    for host, port in [("127.0.0.43", port_a), ("127.0.0.51", port_b), ("127.0.0.53", port_a), ("127.0.0.53", port_c)]:
        tcp_listeners.open(host, port)
    closed = free_port("127.0.0.41")
    targets = ["127.0.0.40/29", "127.0.0.50-54", "127.0.0.60"]
    exclusions = ["127.0.0.43", "127.0.0.54"]
    ports = [port_a, port_b, port_c, closed]

    devices = await scan(
        DiscoveryPlan(
            targets=tuple(targets), exclusions=tuple(exclusions), ports=tuple(ports), probes=frozenset({"tcp"})
        )
    )
    nmap_hosts, nmap_open = nmap_open_ports(targets, exclusions, ports)

    ours = {(ip, port.port) for ip, device in devices.items() for port in device.ports}
    assert ours == nmap_open
    assert (("127.0.0.41", port_a)) in ours and ("127.0.0.53", port_c) in ours
    assert "127.0.0.43" not in devices and "127.0.0.54" not in devices
    # Every address answers on loopback (a refusal is an answer), so every target is a device.
    assert set(devices) == nmap_hosts
    assert all(device.alive_by == "tcp" for device in devices.values())
    assert devices["127.0.0.60"].ports == ()


async def test_the_first_device_arrives_before_a_slow_host_is_done(
    tcp_listeners: TcpListeners, host_keys: HostKeyStore
) -> None:
    fast_port = tcp_listeners.open("127.0.0.61")
    slow_port = tcp_listeners.filtered("127.0.0.62")
    timeout = 2.0
    plan = DiscoveryPlan(
        targets=("127.0.0.61", "127.0.0.62"),
        exclusions=(),
        ports=(fast_port, slow_port),
        probes=frozenset({"tcp"}),
        timeout=timeout,
    )
    progress: list[Progress] = []
    arrivals: list[tuple[float, DeviceObservation]] = []
    started = time.monotonic()
    async for device in discover(plan, host_keys=host_keys, on_progress=progress.append):
        arrivals.append((time.monotonic() - started, device))

    assert [device.ip for _, device in arrivals] == ["127.0.0.61", "127.0.0.62"]
    # The fast host is done at once; the slow one only when its connect times out.
    assert arrivals[0][0] < timeout * 0.75
    assert arrivals[1][0] >= timeout * 0.95
    assert [port.port for port in arrivals[0][1].ports] == [fast_port]
    # Filtered is reported as filtered (open would be a lie, closed too: nothing answered).
    assert [(port.port, port.state) for port in arrivals[1][1].ports] == [(slow_port, PortState.FILTERED)]
    # The total is known as soon as the targets are expanded, before any host is done (later
    # reports are at most one per PROGRESS_INTERVAL, so the fast host's may be folded in).
    assert progress[0] == Progress(targets_done=0, targets_total=2, devices_found=0)
    assert progress[-1] == Progress(targets_done=2, targets_total=2, devices_found=2)


def _syn_sent_to(hosts: set[str], excluded_ports: set[int]) -> int:
    """Our process's connects to `hosts` still waiting for an answer (our fillers' excluded)."""
    return sum(
        1
        for connection in psutil.Process().net_connections(kind="tcp")
        if connection.status == psutil.CONN_SYN_SENT
        and connection.raddr
        and connection.raddr.ip in hosts
        and connection.laddr.port not in excluded_ports
    )


async def test_no_more_connects_in_flight_than_the_concurrency(
    tcp_listeners: TcpListeners, host_keys: HostKeyStore
) -> None:
    host, concurrency, timeout = "127.0.0.70", 4, 0.4
    ports = tuple(tcp_listeners.filtered(host) for _ in range(12))
    fillers = tcp_listeners.filler_ports()
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(_syn_sent_to({host}, fillers))

    sampler = threading.Thread(target=sample)
    sampler.start()
    plan = DiscoveryPlan(
        targets=(host,), exclusions=(), ports=ports, probes=frozenset({"tcp"}), concurrency=4, timeout=timeout
    )
    started = time.monotonic()
    try:
        devices = [device async for device in discover(plan, host_keys=host_keys)]
    finally:
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - started

    assert devices == []  # nothing answered: not a device
    assert max(samples) == concurrency
    # 12 connects, 4 at a time, each waiting the whole timeout: at least 3 rounds.
    assert elapsed >= 3 * timeout * 0.95


async def test_the_rate_limit_spaces_new_connections(tcp_listeners: TcpListeners, scan: Scan) -> None:
    ports = tuple(tcp_listeners.open("127.0.0.71") for _ in range(10))
    plan = DiscoveryPlan(
        targets=("127.0.0.71",), exclusions=(), ports=ports, probes=frozenset({"tcp"}), rate_per_second=20
    )
    started = time.monotonic()
    devices = await scan(plan)
    elapsed = time.monotonic() - started

    assert len(devices["127.0.0.71"].ports) == 10
    # 20/s with a burst of 2: the other 8 connects wait 50 ms each.
    assert elapsed >= 8 / 20 * 0.9


def _filtered_hosts(tcp_listeners: TcpListeners, hosts: list[str], ports: int) -> tuple[int, ...]:
    chosen = tuple(tcp_listeners.filtered(hosts[0]) for _ in range(ports))
    for host in hosts[1:]:
        for port in chosen:
            tcp_listeners.filtered(host, port)
    return chosen


async def _wait_until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_cancelling_a_scan_returns_at_once_and_closes_every_socket(
    tcp_listeners: TcpListeners, host_keys: HostKeyStore
) -> None:
    hosts = [f"127.0.0.{last}" for last in range(80, 88)]
    ports = _filtered_hosts(tcp_listeners, hosts, 2)
    fillers = tcp_listeners.filler_ports()
    process = psutil.Process()
    fds_before = process.num_fds()
    plan = DiscoveryPlan(
        targets=("127.0.0.80-87",), exclusions=(), ports=ports, probes=frozenset({"icmp", "tcp"}), timeout=30
    )

    async def consume() -> list[DeviceObservation]:
        return [device async for device in discover(plan, host_keys=host_keys)]

    task = asyncio.create_task(consume())
    await _wait_until(lambda: _syn_sent_to(set(hosts), fillers) == len(hosts) * len(ports))
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0
    assert _syn_sent_to(set(hosts), fillers) == 0
    assert process.num_fds() == fds_before


async def test_leaving_the_loop_early_inside_aclosing_stops_the_scan_and_closes_every_socket(
    tcp_listeners: TcpListeners, host_keys: HostKeyStore
) -> None:
    open_port = tcp_listeners.open("127.0.0.92")
    (filtered_port,) = _filtered_hosts(tcp_listeners, ["127.0.0.93"], 1)
    fillers = tcp_listeners.filler_ports()
    process = psutil.Process()
    fds_before = process.num_fds()
    plan = DiscoveryPlan(
        targets=("127.0.0.92-93",),
        exclusions=(),
        ports=(open_port, filtered_port),
        probes=frozenset({"tcp"}),
        timeout=30,
    )
    async with contextlib.aclosing(discover(plan, host_keys=host_keys)) as devices:
        async for device in devices:
            assert device.ip == "127.0.0.92"
            assert _syn_sent_to({"127.0.0.93"}, fillers) == 1  # the other host is still being scanned
            break

    assert _syn_sent_to({"127.0.0.93"}, fillers) == 0
    assert process.num_fds() == fds_before


async def test_the_deadline_ends_the_scan_with_what_was_found_and_no_socket_left(
    tcp_listeners: TcpListeners, host_keys: HostKeyStore
) -> None:
    open_port = tcp_listeners.open("127.0.0.90")
    (filtered_port,) = _filtered_hosts(tcp_listeners, ["127.0.0.91"], 1)
    process = psutil.Process()
    fds_before = process.num_fds()
    plan = DiscoveryPlan(
        targets=("127.0.0.90-91",),
        exclusions=(),
        ports=(open_port, filtered_port),
        probes=frozenset({"tcp"}),
        timeout=30,
        deadline=0.5,
    )
    found: list[DeviceObservation] = []
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.5s"):
        async for device in discover(plan, host_keys=host_keys):
            found.append(device)

    assert time.monotonic() - started < 2.5
    assert [device.ip for device in found] == ["127.0.0.90"]
    assert process.num_fds() == fds_before
