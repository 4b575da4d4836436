"""The inventory against an independent oracle, as an operator changes the world between runs.

nmap (`-sT -n -Pn`) judges the ports. Listeners are real sockets on loopback addresses of
their own, on ports the kernel picks, so nothing collides with other tests. (Issue 10's
truth-oracle suite grows here; this is its first case.)
"""

from __future__ import annotations

import json
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_discovery_flow import enabled_collector
from tests.process_harness import ControlPlane

HOST = "127.0.50.1"


@pytest.fixture
def open_ports() -> Iterator[list[int]]:
    """Two listening ports on HOST, and one port that was bound and released (closed)."""
    sockets = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind((HOST, 0))
        sock.listen(16)
        sockets.append(sock)
    try:
        yield [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def nmap_states(host: str, ports: list[int]) -> dict[int, str]:
    out = subprocess.run(
        ["nmap", "-sT", "-n", "-Pn", "-p", ",".join(map(str, ports)), "-oX", "-", host],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return {
        int(port.get("portid", "0")): port.find("state").get("state", "")  # type: ignore[union-attr]
        for port in ET.fromstring(out).iter("port")
    }


def device(plane: ControlPlane) -> dict[str, Any]:
    return dict(json.loads(plane.ctl("devices", "show", HOST, "--json").stdout))


def run(plane: ControlPlane, name: str) -> None:
    summary = json.loads(plane.ctl("discoveries", "run", name, "--wait", "--json").stdout)
    assert summary["state"] == "succeeded", summary


def test_runs_without_the_tcp_probe_after_a_tcp_run_change_no_port(
    control_plane: ControlPlane, tmp_path: Path, open_ports: list[int]
) -> None:
    closed = socket.socket()
    closed.bind((HOST, 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    ports = [*open_ports, closed_port]
    collector = enabled_collector(control_plane, tmp_path, "edge-truth")
    try:
        common = ["--targets", HOST, "--ports", ",".join(map(str, ports)), "--collector", "edge-truth"]
        control_plane.ctl("discoveries", "create", "ports", *common, "--probes", "tcp")
        control_plane.ctl("discoveries", "create", "sweep", *common, "--probes", "icmp")
        control_plane.ctl("discoveries", "create", "names", *common, "--probes", "dns")

        run(control_plane, "ports")
        oracle = nmap_states(HOST, ports)
        assert {p for p, state in oracle.items() if state == "open"} == set(open_ports)
        after_tcp = device(control_plane)
        assert sorted(after_tcp["open_ports"]) == sorted(open_ports)

        run(control_plane, "sweep")
        run(control_plane, "names")

        now = device(control_plane)
        assert (
            sorted(now["open_ports"])
            == sorted(open_ports)
            == sorted(p for p, state in nmap_states(HOST, ports).items() if state == "open")
        )
        port_changes = [c for c in now["history"] if c["field"].startswith("port.")]
        assert port_changes == [c for c in after_tcp["history"] if c["field"].startswith("port.")]
    finally:
        collector.stop()
