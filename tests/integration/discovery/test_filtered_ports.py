"""Filtered apart from closed, behind real nftables drop rules, with nmap as the oracle.

A loopback /29 where nftables drops the SYNs to two ports (`tests/peers/nft_drop.py`):
one with nothing behind it, one with a listener behind it (a firewall hides an open
port: filtered, not open). A third port has a listener on one address (open there,
refused elsewhere) and a fourth has nothing (refused: closed). The engine's states per
(address, port) must be nmap's: open and filtered listed, closed left out.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest

from services.collector.discovery import DiscoveryPlan
from services.collector.discovery.model import PortState
from tests.integration.discovery.conftest import Scan
from tests.peers import nft_drop
from tests.peers.process import free_port
from tests.peers.tcp import TcpListeners

NETWORK = "127.0.0.112/29"
HOSTS = [f"127.0.0.{last}" for last in range(112, 120)]

pytestmark = pytest.mark.skipif(
    nft_drop.unavailable() is not None, reason=f"firewalled regime: {nft_drop.unavailable()}"
)

States = dict[tuple[str, int], str]


def nmap_states(network: str, ports: list[int]) -> States:
    """nmap's state of every (address, port): open, closed or filtered."""
    command = ["nmap", "-T4", "-sT", "-n", "-Pn", "-p", ",".join(map(str, ports)), "-oX", "-", network]
    report = ET.fromstring(subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout)
    states: States = {}
    for host in report.iter("host"):
        address = host.find("address")
        assert address is not None
        ip = address.get("addr", "")
        for port in host.iter("port"):
            state = port.find("state")
            assert state is not None
            states[ip, int(port.get("portid", "0"))] = state.get("state", "")
        # Ports nmap folds into <extraports> (many in one state) are not listed one by one.
        assert host.find("ports/extraports") is None, "nmap folded ports: list fewer"
    return states


async def test_filtered_and_closed_are_told_apart_as_nmap_does_behind_drop_rules(
    tcp_listeners: TcpListeners, scan: Scan
) -> None:
    hidden = tcp_listeners.open("127.0.0.113")  # listening, but behind the drop rule
    shown = tcp_listeners.open("127.0.0.114")
    dropped, closed = free_port("127.0.0.112"), free_port("127.0.0.112")
    ports = [hidden, shown, dropped, closed]
    assert len(set(ports)) == len(ports)

    with nft_drop.dropping(NETWORK, [hidden, dropped]):
        devices = await scan(
            DiscoveryPlan(targets=(NETWORK,), exclusions=(), ports=tuple(ports), probes=frozenset({"tcp"}), timeout=0.5)
        )
        oracle = nmap_states(NETWORK, ports)

    ours: States = {}
    for ip in HOSTS:
        listed = {port.port: port.state for port in devices[ip].ports} if ip in devices else {}
        for port in ports:
            state = listed.get(port)
            ours[ip, port] = "closed" if state is None else "open" if state is PortState.OPEN else "filtered"
    assert ours == oracle
    # Each address answers on its refused ports, so every one is a live device.
    assert set(devices) == set(HOSTS)
    assert ours["127.0.0.113", hidden] == "filtered" and ours["127.0.0.114", shown] == "open"
    assert ours["127.0.0.115", dropped] == "filtered" and ours["127.0.0.115", closed] == "closed"
