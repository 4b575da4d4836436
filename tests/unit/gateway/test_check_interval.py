"""The gateway's copy of `collector_check_minutes`: read at start, kept by the watch, told on change."""

from __future__ import annotations

from structlog.testing import capture_logs

from services.gateway.domain.check_interval import DEFAULT_COLLECTOR_CHECK_MINUTES, CheckInterval
from services.gateway.peers.scheduler_client import SettingsChanged
from services.gateway.sessions.hub import CheckIntervalChanged, LiveSession, SessionHub
from services.gateway.sessions.run_routing import Dispatcher


def hub_with_session() -> tuple[SessionHub, list[object]]:
    hub = SessionHub()
    told: list[object] = []
    hub.attach(LiveSession("s-1", "uid-1", "edge-1", "lab", "tcp", "127.0.0.1:1", 0.0, told.append))
    return hub, told


def test_until_the_first_read_the_default_is_held_and_the_log_says_so() -> None:
    with capture_logs() as logs:
        dispatcher = Dispatcher(SessionHub())
    assert dispatcher.check_interval.minutes == DEFAULT_COLLECTOR_CHECK_MINUTES
    assert not dispatcher.check_interval.read
    assert logs[0]["event"] == "check_interval_default_in_use"


def test_the_stored_value_read_at_start_replaces_the_default_and_reaches_live_sessions() -> None:
    hub, told = hub_with_session()
    dispatcher = Dispatcher(hub, CheckInterval(seconds_per_minute=60))
    with capture_logs() as logs:
        dispatcher.settings_read(1)
    assert (dispatcher.collector_check_minutes, dispatcher.check_interval.seconds) == (1, 60)
    assert dispatcher.check_interval.read
    assert told == [CheckIntervalChanged(1)]
    assert {"check_interval_changed", "check_interval_read"} <= {e["event"] for e in logs}


def test_reading_or_watching_the_value_already_held_tells_nobody() -> None:
    hub, told = hub_with_session()
    dispatcher = Dispatcher(hub)
    dispatcher.settings_read(DEFAULT_COLLECTOR_CHECK_MINUTES)  # the stored value is the default
    dispatcher.apply(SettingsChanged(revision=3, collector_check_minutes=DEFAULT_COLLECTOR_CHECK_MINUTES))
    dispatcher.settings_read(DEFAULT_COLLECTOR_CHECK_MINUTES)  # a resync after a gap
    assert told == []
    assert dispatcher.check_interval.read


def test_a_watched_change_is_held_and_told_and_zero_is_not_a_setting() -> None:
    hub, told = hub_with_session()
    dispatcher = Dispatcher(hub, CheckInterval(seconds_per_minute=2))
    dispatcher.apply(SettingsChanged(revision=4, collector_check_minutes=10))
    dispatcher.settings_read(0)  # a scheduler that sends no value
    assert (dispatcher.collector_check_minutes, dispatcher.check_interval.seconds) == (10, 20)
    assert told == [CheckIntervalChanged(10)]
