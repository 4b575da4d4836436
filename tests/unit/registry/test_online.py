"""The online rule: connected and heard from within two heartbeat intervals (ADR 0010)."""

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
