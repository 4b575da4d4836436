"""The port feed and per-host TCP results (no sockets)."""

from __future__ import annotations

import asyncio

from services.collector.discovery.connect_scan import HostScan, PortFeed
from services.collector.discovery.tcp import PortState


async def test_the_feed_hands_out_ports_host_after_host_then_ends_when_closed() -> None:
    feed = PortFeed((22, 80))
    first, second = HostScan("10.0.0.1", pending=2), HostScan("10.0.0.2", pending=2)
    feed.add(first)
    feed.add(second)
    feed.close()

    pairs = []
    while (item := await feed.next()) is not None:
        pairs.append((item[0].ip, item[1]))
    assert pairs == [("10.0.0.1", 22), ("10.0.0.1", 80), ("10.0.0.2", 22), ("10.0.0.2", 80)]
    assert feed.take() is None


async def test_a_waiting_worker_wakes_for_a_new_host() -> None:
    feed = PortFeed((443,))
    waiting = asyncio.create_task(feed.next())
    await asyncio.sleep(0)
    assert not waiting.done()

    feed.add(HostScan("10.0.0.9", pending=1))
    item = await waiting
    assert item is not None and (item[0].ip, item[1]) == ("10.0.0.9", 443)


def test_a_host_is_done_after_its_last_port_and_alive_if_any_answered() -> None:
    host = HostScan("10.0.0.1", pending=3)
    host.record(22, PortState.FILTERED, 1000.0)
    host.record(80, PortState.CLOSED, 2.5)
    assert not host.tcp_done.is_set()
    host.record(443, PortState.OPEN, 1.5)

    assert host.tcp_done.is_set()
    assert host.answered
    assert host.open_ports == [443]
    assert host.tcp_rtt_ms == 1.5


def test_filtered_everywhere_is_not_an_answer_and_no_ports_means_done() -> None:
    host = HostScan("10.0.0.1", pending=1)
    host.record(22, PortState.FILTERED, 1000.0)
    assert host.tcp_done.is_set() and not host.answered and host.tcp_rtt_ms is None
    assert HostScan("10.0.0.2", pending=0).tcp_done.is_set()
    assert HostScan("::1", pending=0).family != HostScan("127.0.0.1", pending=0).family


def test_a_host_reported_whole_by_a_scan_worker_is_done_with_its_answers() -> None:
    host = HostScan("10.0.0.3", pending=4)
    host.complete([443, 22], [8080], True, 0.25)
    assert host.tcp_done.is_set() and host.pending == 0
    assert (host.open_ports, host.filtered_ports, host.answered, host.tcp_rtt_ms) == ([443, 22], [8080], True, 0.25)
