"""The database goes away in the middle of ingest: connections killed, or refused for a while.

The PostgreSQL server is shared, so it is not restarted; its effect is reproduced on the
test's own database (`database.py`): the gateway's connections are terminated again and
again while batches arrive, or every connection to the database is terminated and new
ones are refused until the scan has moved on (or has ended, final update included). A
commit that fails is not acknowledged; the collector keeps the batch and sends it again
once commits work (ADR 0010, "Backpressure"), and the run ends as if nothing happened.
"""

from __future__ import annotations

import pytest

from tests.chaos.lab import Lab
from tests.chaos.oracle import Expected, assert_conserved
from tests.chaos.runs import (
    create_discovery,
    runs_started,
    start_run,
    wait_final,
    wait_mid_ingest,
    wait_scan_advanced,
)
from tests.process_harness import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.mark.parametrize("outage", ["gateway_connections_killed", "database_down", "database_down_until_the_scan_ends"])
def test_database_lost_mid_ingest_loses_and_doubles_nothing(lab: Lab, outage: str) -> None:
    farm = lab.farm("127.0.73")
    plane = lab.control_plane()
    collector = lab.collector(plane, "edge-db", [plane.url("grpc")])
    create_discovery(plane, "farm", farm, collector="edge-db")
    run_id = start_run(plane, "farm")
    wait_mid_ingest(lab.database, farm, at_least=6)

    gateway = plane.gateways[0]
    if outage == "gateway_connections_killed":
        killed = 0
        start = farm.hosts_probed()

        def hammered() -> bool:
            nonlocal killed
            killed += lab.database.kill_connections("outpost-gateway")
            return farm.hosts_probed() >= start + 5

        wait_for(hammered, timeout=30, interval=0.01, what="five more hosts scanned while connections are killed")
        assert killed >= 1, "the gateway had no database connection to kill"
    elif outage == "database_down":
        # Five hosts take over a second to scan: batches are found (and cannot be committed)
        # while the database is away.
        with lab.database.down():
            wait_scan_advanced(farm, hosts=5)
    else:
        # The collector finishes while nothing can be recorded: the rest of its batches and
        # its final update must still arrive once the database is back.
        with lab.database.down():
            wait_for(
                lambda: any(e.get("event") == "job_run_ended" for e in collector.log_events()),
                timeout=30,
                interval=0.1,
                what="the collector to finish the scan while the database is down",
            )

    run = wait_final(plane, run_id)
    assert run["state"] == "succeeded", run
    assert gateway.alive(), gateway.log()[-3000:]
    assert_conserved(plane, Expected("lab", farm.expected))
    assert runs_started([collector]) == {run_id: 1}
