"""Two gateways (each watching its own scheduler) on one database; the first one goes away.

Each collector lists both gateways (`--server` twice) and starts on the first. Killed
with -9, the first gateway says nothing: its collectors see the connection drop and move
on. Given SIGTERM, it drains: it finishes the frame each session is handling, tells every
collector to reconnect elsewhere (Disconnect SHUTTING_DOWN) and exits within
`--drain-seconds`. Either way the run goes on on the other gateway and the inventory
ends complete, each result once.
"""

from __future__ import annotations

import time

import pytest

from tests.chaos.lab import Lab
from tests.chaos.oracle import Expected, assert_conserved
from tests.chaos.runs import collector_entry, create_discovery, runs_started, start_run, wait_final, wait_mid_ingest
from tests.peers.listener_farm import ListenerFarm
from tests.process_harness import Collector, ControlPlane, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(120)]

DRAIN_SECONDS = 3  # what the harness gives every gateway


def test_killed_gateway_hands_its_collectors_to_the_other_and_loses_nothing(lab: Lab) -> None:
    plane, farm, collectors, run_id = two_gateways_mid_ingest(lab)

    plane.gateways[0].kill()

    assert_moved_to_second_gateway(plane, collectors)
    finish_and_check(plane, farm, collectors, run_id)


def test_sigterm_gateway_drains_collectors_reconnect_elsewhere_and_nothing_is_lost(lab: Lab) -> None:
    plane, farm, collectors, run_id = two_gateways_mid_ingest(lab)

    started = time.monotonic()
    code = plane.gateways[0].terminate(timeout=DRAIN_SECONDS + 10)
    assert code == 0, plane.gateways[0].log()[-3000:]
    assert time.monotonic() - started < DRAIN_SECONDS + 5, "the gateway overran its drain time"

    assert_moved_to_second_gateway(plane, collectors)
    for collector in collectors:
        closes = [e for e in collector.log_events() if e.get("event") == "session_closed"]
        assert closes, f"{collector.name} logged no session_closed"
        assert closes[0]["reason"] == "DISCONNECT_REASON_SHUTTING_DOWN" and closes[0]["by_server"], closes[0]
    finish_and_check(plane, farm, collectors, run_id)


def two_gateways_mid_ingest(lab: Lab) -> tuple[ControlPlane, ListenerFarm, list[Collector], str]:
    """Two gateways and schedulers; two collectors on the first gateway, one scanning mid-ingest."""
    farm = lab.farm("127.0.75")
    plane = lab.control_plane(gateways=2, schedulers=2)
    urls = plane.urls("grpc")
    collectors = [lab.collector(plane, name, urls) for name in ("edge-scan", "edge-idle")]
    for collector in collectors:
        assert collector.status()["server"] == urls[0]
    create_discovery(plane, "farm", farm, collector="edge-scan")
    run_id = start_run(plane, "farm")
    wait_mid_ingest(lab.database, farm)
    return plane, farm, collectors, run_id


def assert_moved_to_second_gateway(plane: ControlPlane, collectors: list[Collector]) -> None:
    second = plane.gateways[1]
    for collector in collectors:
        collector.wait_status(
            lambda s: s["state"] == "enabled" and s["server"] == plane.url("grpc", gateway=1),
            "connected to the second gateway",
        )

    def registry_agrees() -> bool:
        entries = [collector_entry(plane, c.name) for c in collectors]
        return all(e["connected"] and e["gateway_id"] == second.ready["gateway_id"] for e in entries)

    wait_for(registry_agrees, timeout=15, interval=0.3, what="the registry to show both on the second gateway")


def finish_and_check(plane: ControlPlane, farm: ListenerFarm, collectors: list[Collector], run_id: str) -> None:
    run = wait_final(plane, run_id)
    assert run["state"] == "succeeded", run
    assert run["collector"] == "edge-scan", run
    assert_conserved(plane, Expected("lab", farm.expected))
    assert runs_started(collectors) == {run_id: 1}
