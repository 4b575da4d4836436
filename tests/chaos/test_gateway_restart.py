"""kill -9 of the only gateway in the middle of ingest, then a restart on the same ports.

Batches in flight when the gateway dies were either committed or not; the collector
keeps every unacknowledged batch and sends it again to the restarted gateway, which
commits what is new and acknowledges duplicates. The scan itself never stops. While no
gateway reports the collector, the registry shows it offline within two heartbeats.
"""

from __future__ import annotations

import time

import pytest

from tests.chaos.lab import HEARTBEAT_SECONDS, Lab
from tests.chaos.oracle import Expected, assert_conserved
from tests.chaos.runs import (
    CLI_SLACK_SECONDS,
    create_discovery,
    job_run,
    runs_started,
    seconds_until_offline,
    start_run,
    wait_final,
    wait_mid_ingest,
)

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(120)]


def test_gateway_killed_mid_ingest_and_restarted_loses_and_doubles_nothing(lab: Lab) -> None:
    farm = lab.farm("127.0.71")
    plane = lab.control_plane()
    collector = lab.collector(plane, "edge-restart", [plane.url("grpc")])
    create_discovery(plane, "farm", farm, collector="edge-restart")
    run_id = start_run(plane, "farm")

    committed = wait_mid_ingest(lab.database, farm)
    killed_at = time.monotonic()
    plane.gateways[0].kill()
    collector.wait_status(lambda s: s["state"] == "disconnected", "notices the gateway is gone")
    assert lab.database.device_count() < len(farm.expected), f"struck too late: {committed} devices were committed"
    # Nobody reports its session any more: the registry must say offline within two heartbeats.
    took = seconds_until_offline(plane, "edge-restart", killed_at, timeout=2 * HEARTBEAT_SECONDS + 10)
    assert took <= 2 * HEARTBEAT_SECONDS + CLI_SLACK_SECONDS, f"offline only {took:.1f}s after the kill -9"

    plane.gateways[0].restart()
    collector.wait_state("enabled")
    run = wait_final(plane, run_id)

    assert run["state"] == "succeeded", run
    assert_conserved(plane, Expected("lab", farm.expected))
    # The collector kept scanning while the gateway was down: one attempt, one scan.
    assert runs_started([collector]) == {run_id: 1}
    assert job_run(plane, run_id).get("attempt", 1) == 1
