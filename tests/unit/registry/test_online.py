"""The online rule: connected and heard from within two heartbeat intervals (ADR 0010); a
polling collector within its check-in interval plus those two (issue 10, item 12)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.registry.domain.collectors import (
    Collector,
    CollectorState,
    SessionReport,
    heard_at,
    is_online,
    online_window,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
INTERVAL = 30
COLLECTOR = Collector(
    instance_uid="uid-7",
    name="edge-7",
    zone="dmz",
    version="1.0.0",
    username="svc",
    password_verifier="",
    public_key=b"k" * 32,
    fingerprint="SHA256:x",
    state=CollectorState.ENABLED,
    first_seen=NOW - timedelta(days=1),
    last_seen=NOW,
    connected=True,
)


@pytest.mark.parametrize(
    ("connected", "silent", "online"),
    [
        (True, timedelta(0), True),
        (True, timedelta(seconds=2 * INTERVAL), True),
        (True, timedelta(seconds=2 * INTERVAL, microseconds=1), False),
        (True, timedelta(hours=5), False),  # its gateway was killed with -9 and never said so
        (False, timedelta(0), False),  # the gateway reported the session ended
    ],
)
def test_online_needs_a_connected_session_heard_from_within_two_intervals(
    connected: bool, silent: timedelta, online: bool
) -> None:
    collector = replace(COLLECTOR, connected=connected, last_seen=NOW - silent)
    assert is_online(collector, NOW, INTERVAL) is online


def test_the_window_follows_the_heartbeat_interval() -> None:
    collector = replace(COLLECTOR, last_seen=NOW - timedelta(seconds=100))
    assert not is_online(collector, NOW, 30)
    assert is_online(collector, NOW, 60)


def test_a_report_without_a_heard_time_means_held_now() -> None:
    report = SessionReport("uid-7", "s-1", connected=True)
    assert heard_at(report, NOW) == NOW


def test_a_heard_time_in_the_registrys_future_is_capped_at_now() -> None:
    ahead = SessionReport("uid-7", "s-1", connected=True, last_heard_at=NOW + timedelta(minutes=5))
    behind = SessionReport("uid-7", "s-1", connected=True, last_heard_at=NOW - timedelta(seconds=7))
    assert heard_at(ahead, NOW) == NOW
    assert heard_at(behind, NOW) == NOW - timedelta(seconds=7)


POLLING = replace(COLLECTOR, transport="http_poll", check_in_seconds=300)


@pytest.mark.parametrize(
    ("silent", "online"),
    [
        (timedelta(0), True),
        (timedelta(seconds=2 * INTERVAL + 1), True),  # beyond a streaming collector's window
        (timedelta(minutes=4, seconds=59), True),  # just before its next check-in
        (timedelta(minutes=5, seconds=40), True),  # the check-in is late by less than the grace
        (timedelta(seconds=300 + 2 * INTERVAL), True),
        (timedelta(seconds=300 + 2 * INTERVAL, microseconds=1), False),  # a check-in missed
    ],
)
def test_a_polling_collector_is_online_for_its_check_in_interval_plus_two_heartbeat_intervals(
    silent: timedelta, online: bool
) -> None:
    assert is_online(replace(POLLING, last_seen=NOW - silent), NOW, INTERVAL) is online


def test_a_polling_collector_stays_online_on_an_injected_clock_between_check_ins() -> None:
    """Checking in every 5 minutes under a 30 s heartbeat, it never looks offline."""
    collector = replace(POLLING, last_seen=NOW)
    clock = NOW
    for _ in range(3):  # three check-ins, looked at every 10 s in between
        for _ in range(30):
            clock += timedelta(seconds=10)
            assert is_online(collector, clock, INTERVAL), clock - collector.last_seen
        collector = replace(collector, last_seen=clock)  # it checked in
    assert not is_online(collector, clock + timedelta(minutes=7), INTERVAL)


def test_the_window_is_the_check_in_interval_plus_the_streaming_window() -> None:
    assert online_window(30) == timedelta(seconds=60)
    assert online_window(30, 300) == timedelta(seconds=360)
    assert online_window(2, 60) == timedelta(seconds=64)
