"""The server's settings hold across restarts (issue 10, items 9, 11 and 12), with real processes.

`config set collector_check_minutes 2`, then every service (gateway, scheduler, registry)
is restarted and nobody sets anything again: the polling collector checks in every 2
"minutes" from its first poll to the new gateway on, and the streaming collectors (TCP,
gRPC, WebSocket) are told 2 when they reconnect. The gateways run with the test-only
`--check-minute-seconds 1`, so a minute of the setting lasts a second and the default (5)
would show as 5-second check-ins. Intervals are measured from the gateway's
`poll_checked_in` debug lines; every wait is on a condition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.process_harness import Collector, ControlPlane, wait_for

PASSWORD = "settings-test-password"
CHECK_MINUTES = 2
"""With --check-minute-seconds 1: check-ins every 2 s (the default would be every 5 s)."""
SLACK_SECONDS = 1.0
"""A check-in may come this much after its interval: the poll's own round trip and a busy machine."""
CHECK_INS = 4


@pytest.fixture
def control_plane(tmp_path: Path, database_url: str) -> Iterator[ControlPlane]:
    plane = ControlPlane(
        tmp_path / "server",
        database_url,
        gateway_args=["--check-minute-seconds", "1", "--log-level", "debug"],
    ).start()
    try:
        yield plane
    finally:
        plane.stop()


def since(events: list[dict[str, Any]], moment: dt.datetime) -> list[dict[str, Any]]:
    return [e for e in events if dt.datetime.fromisoformat(e["timestamp"]) >= moment]


def told_check_minutes(collector: Collector, moment: dt.datetime) -> list[int]:
    """The check intervals the collector was told since `moment`."""
    events = since(collector.log_events(), moment)
    return [e["collector_check_minutes"] for e in events if e.get("event") == "config_received"]


@pytest.mark.timeout(240)
def test_the_stored_check_interval_holds_after_every_service_restarts(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    control_plane.ctl("config", "set", "collector_check_minutes", str(CHECK_MINUTES))
    collectors = {
        transport: Collector(tmp_path, f"edge-{transport}", [control_plane.url(transport)], PASSWORD).start()
        for transport in ("http_poll", "tcp", "grpc", "websocket")
    }
    try:
        for collector in collectors.values():
            collector.wait_state("pending")

        restarted = dt.datetime.now(dt.UTC)
        gateway, scheduler = control_plane.gateways[0], control_plane.schedulers[0]
        assert gateway.terminate() == 0, gateway.log()[-3000:]
        assert scheduler.terminate() == 0, scheduler.log()[-3000:]
        control_plane.restart_registry()
        scheduler.restart()
        gateway.restart()

        read = [e for e in since(gateway.log_events(), restarted) if e.get("event") == "check_interval_read"]
        assert [e["collector_check_minutes"] for e in read] == [CHECK_MINUTES]

        # Streaming collectors: the stored value in the first ConfigUpdate of the new session.
        for transport in ("tcp", "grpc", "websocket"):
            wait_for(
                lambda c=collectors[transport]: told_check_minutes(c, restarted),  # type: ignore[misc]
                timeout=30,
                what=f"the {transport} collector is told the check interval after the restart",
            )
            assert told_check_minutes(collectors[transport], restarted) == [CHECK_MINUTES], transport

        # The polling collector: every check-in of its new session at the stored interval.
        def check_ins() -> list[dict[str, Any]]:
            events = since(gateway.log_events(), restarted)
            return [e for e in events if e.get("event") == "poll_checked_in" and e.get("collector") == "edge-http_poll"]

        found = wait_for(
            lambda: len(check_ins()) >= CHECK_INS and check_ins(),
            timeout=60,
            interval=0.2,
            what=f"{CHECK_INS} check-ins of the polling collector after the restart",
        )
        intervals = [e["since_previous_seconds"] for e in found]
        assert {e["check_in_seconds"] for e in found} == {CHECK_MINUTES}
        assert max(intervals) <= CHECK_MINUTES + SLACK_SECONDS, intervals
        assert max(intervals) >= CHECK_MINUTES - 0.5, intervals  # it waits between polls, too
        assert told_check_minutes(collectors["http_poll"], restarted)[0] == CHECK_MINUTES

        # Its status follows its own interval: online between check-ins.
        listed = {c["name"]: c for c in control_plane.collectors()}
        assert listed["edge-http_poll"]["online"], listed["edge-http_poll"]
        shown = control_plane.ctl("collectors", "show", "edge-http_poll").stdout
        assert f"every {CHECK_MINUTES} s (polling)" in shown
    finally:
        for collector in collectors.values():
            collector.stop()
