"""A zone run whose collector dies mid-run is repeated by another collector of the zone.

Two healthy collectors of zone "lab" and a disabled one: exactly one healthy collector
takes the run. It is killed with -9 in the middle of ingest and not restarted. Nobody
renews its lease (`--lease-seconds` 6), so the scheduler hands the run out again as
attempt 2; the other healthy collector takes it, scans everything again, and the
inventory ends with each result once.
"""

from __future__ import annotations

import pytest

from tests.chaos.lab import LEASE_ARGS, Lab
from tests.chaos.oracle import Expected, assert_conserved
from tests.chaos.runs import create_discovery, job_run, runs_started, start_run, wait_final, wait_mid_ingest
from tests.process_harness import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(120)]


def test_zone_run_is_repeated_by_another_collector_when_its_collector_dies(lab: Lab) -> None:
    farm = lab.farm("127.0.77")
    plane = lab.control_plane(scheduler_args=LEASE_ARGS)
    collectors = {name: lab.collector(plane, name, [plane.url("grpc")]) for name in ("edge-a", "edge-b")}
    # Connected but disabled: not healthy, so never a taker, first attempt or second.
    disabled = lab.collector(plane, "edge-off", [plane.url("grpc")])
    plane.ctl("collectors", "disable", "edge-off")
    disabled.wait_state("disabled")
    create_discovery(plane, "zone-farm", farm, zone="lab")
    run_id = start_run(plane, "zone-farm")

    taker_name = wait_for(lambda: job_run(plane, run_id)["collector"], timeout=15, what="a collector to take the run")
    wait_mid_ingest(lab.database, farm)
    assert runs_started(collectors.values()) == {run_id: 1}, "more than one collector of the zone started the run"
    taker = collectors.pop(taker_name)
    (other,) = collectors.values()
    taker.kill()

    run = wait_final(plane, run_id, timeout=90)
    assert run["state"] == "succeeded", run
    assert run["collector"] == other.name, run
    assert runs_started([other]) == {run_id: 1}
    assert runs_started([disabled]) == {}
    assert_conserved(plane, Expected("lab", farm.expected))
    assert run.get("attempt") == 2, f"`jobs show --json` should say attempt 2: {run}"
