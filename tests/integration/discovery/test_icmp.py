"""ICMP echo on loopback: a reply when this process may ping, else the note and TCP liveness."""

from __future__ import annotations

import pytest

from services.collector.discovery import DiscoveryPlan, icmp
from tests.integration.discovery.conftest import Scan
from tests.peers.process import free_port


async def test_icmp_gets_an_echo_reply_or_says_it_is_not_permitted(scan: Scan) -> None:
    plan = DiscoveryPlan(
        targets=("127.0.0.1",), exclusions=(), ports=(free_port("127.0.0.1"),), probes=frozenset({"icmp", "tcp"})
    )
    device = (await scan(plan))["127.0.0.1"]

    if icmp.current_icmp_access() is icmp.IcmpAccess.NOT_PERMITTED:
        assert device.alive_by == "tcp"
        assert device.notes == (icmp.NOT_PERMITTED_NOTE,)
    else:  # as root (privileged raw socket) or within ping_group_range
        assert device.alive_by == "icmp"
        assert device.rtt_ms > 0
        assert device.notes == ()


async def test_without_icmp_permission_liveness_comes_from_tcp_with_one_note(
    scan: Scan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icmp, "current_icmp_access", lambda: icmp.IcmpAccess.NOT_PERMITTED)
    plan = DiscoveryPlan(
        targets=("127.0.0.1", "127.0.0.2"),
        exclusions=(),
        ports=(free_port("127.0.0.1"),),
        probes=frozenset({"icmp", "tcp"}),
    )
    devices = await scan(plan)

    assert set(devices) == {"127.0.0.1", "127.0.0.2"}
    for device in devices.values():
        assert device.alive_by == "tcp"
        assert device.notes == (icmp.NOT_PERMITTED_NOTE,)


async def test_icmp_alone_finds_a_host_that_has_no_port_to_scan(scan: Scan) -> None:
    if icmp.current_icmp_access() is icmp.IcmpAccess.NOT_PERMITTED:
        pytest.skip("this process may not send ICMP (not root, outside ping_group_range)")
    plan = DiscoveryPlan(targets=("127.0.0.3",), exclusions=(), ports=(), probes=frozenset({"icmp"}))
    devices = await scan(plan)

    assert devices["127.0.0.3"].alive_by == "icmp"
