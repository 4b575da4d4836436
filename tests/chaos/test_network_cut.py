"""The network between a collector and its gateway is cut, then restored.

The collector reaches the gateway through a proxy the test controls; `cut()` turns it
into a black hole (no reset, no refusal: silence), as a failed link does. Neither side is
told; each must notice from its own heartbeat deadline.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.chaos.lab import HEARTBEAT_SECONDS, LEASE_ARGS, LEASE_SECONDS, Lab
from tests.chaos.oracle import Expected, assert_conserved
from tests.chaos.runs import (
    CLI_SLACK_SECONDS,
    create_discovery,
    job_run,
    online,
    runs_started,
    seconds_until_offline,
    start_run,
    wait_final,
    wait_mid_ingest,
)
from tests.process_harness import ControlPlane, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(120)]

EXIT_NOT_LIVE = 3  # `outpostctl collectors explain`: answered, and the collector is not live


def test_link_cut_mid_ingest_and_restored_loses_and_doubles_nothing(lab: Lab) -> None:
    farm = lab.farm("127.0.74")
    plane = lab.control_plane()
    proxy = lab.proxy(plane.gateway_ready["grpc"])
    collector = lab.collector(plane, "edge-cut", [f"grpc://{proxy.address}"])
    create_discovery(plane, "farm", farm, collector="edge-cut")
    run_id = start_run(plane, "farm")

    wait_mid_ingest(lab.database, farm)
    proxy.cut()
    # Only silence tells it: three missed heartbeat answers. The scan goes on meanwhile.
    collector.wait_status(
        lambda s: s["state"] == "disconnected", "notices the silent link", timeout=4 * HEARTBEAT_SECONDS + 10
    )
    assert lab.database.device_count() < len(farm.expected)
    proxy.restore()
    collector.wait_state("enabled")

    run = wait_final(plane, run_id)
    assert run["state"] == "succeeded", run
    assert_conserved(plane, Expected("lab", farm.expected))
    # Everything found while the link was down was kept and delivered: no second scan.
    assert runs_started([collector]) == {run_id: 1}


def test_link_cut_longer_than_the_lease_repeats_the_run_and_doubles_nothing(lab: Lab) -> None:
    """The scheduler cannot tell a cut link from a dead collector: the lease runs out and the
    run is handed out again. When the link is back, the collector (still scanning the first
    attempt) takes the second attempt; results of both attempts merge, nothing doubled."""
    farm = lab.farm("127.0.74")
    plane = lab.control_plane(scheduler_args=LEASE_ARGS)
    proxy = lab.proxy(plane.gateway_ready["grpc"])
    collector = lab.collector(plane, "edge-lease", [f"grpc://{proxy.address}"])
    # About 20 s of scanning: the first attempt is still going when its lease runs out.
    create_discovery(plane, "farm", farm, collector="edge-lease", rate=6)
    run_id = start_run(plane, "farm")

    wait_mid_ingest(lab.database, farm, at_least=4)
    proxy.cut()
    wait_for(
        lambda: (r := job_run(plane, run_id))["state"] == "queued" or r.get("attempt", 1) >= 2,
        timeout=2 * LEASE_SECONDS + 10,
        interval=0.5,
        what="the lease of the cut collector to expire",
    )
    proxy.restore()

    run = wait_final(plane, run_id, timeout=90)
    assert run["state"] == "succeeded", run
    assert_conserved(plane, Expected("lab", farm.expected))
    assert runs_started([collector])[run_id] >= 2, "the run was not handed out again"
    assert run.get("attempt", 0) >= 2, run


def test_cut_collector_shows_offline_within_two_heartbeats_and_explain_says_why(lab: Lab) -> None:
    plane = lab.control_plane()
    proxy = lab.proxy(plane.gateway_ready["grpc"])
    lab.collector(plane, "edge-dark", [f"grpc://{proxy.address}"])
    wait_for(lambda: online(plane, "edge-dark"), timeout=10, what="edge-dark online")
    # A healthy collector stays online: heartbeats keep it fresh across several intervals.
    steady_until = time.monotonic() + 3 * HEARTBEAT_SECONDS
    while time.monotonic() < steady_until:
        assert online(plane, "edge-dark"), "a connected, heartbeating collector was shown offline"
    assert json.loads(plane.ctl("collectors", "explain", "edge-dark", "--json").stdout)["live"] is True

    cut_at = time.monotonic()
    proxy.cut()
    took = seconds_until_offline(plane, "edge-dark", cut_at, timeout=2 * HEARTBEAT_SECONDS + 10)
    assert took <= 2 * HEARTBEAT_SECONDS + CLI_SLACK_SECONDS, (
        f"offline only {took:.1f}s after the cut; heartbeat interval {HEARTBEAT_SECONDS}s"
    )

    explanation = explain(plane, "edge-dark")
    assert explanation["live"] is False, explanation
    assert explanation["summary"], explanation
    offline = [f for f in explanation["findings"] if f["code"] == "offline"]
    assert offline, f"no 'offline' finding: {explanation}"
    assert offline[0]["severity"] in ("warning", "error"), offline
    assert offline[0]["message"], offline

    proxy.restore()
    wait_for(lambda: online(plane, "edge-dark"), timeout=6 * HEARTBEAT_SECONDS + 10, what="edge-dark online again")


def explain(plane: ControlPlane, name: str) -> dict[str, Any]:
    """`outpostctl collectors explain NAME --json` of a collector that is not live (exit status 3)."""
    result = plane.ctl("collectors", "explain", name, "--json", check=False)
    assert result.returncode == EXIT_NOT_LIVE, (
        f"collectors explain {name}: exit {result.returncode}, not {EXIT_NOT_LIVE} (not live): "
        f"{result.stderr}{result.stdout}"
    )
    return json.loads(result.stdout)
