"""kill -9 of a collector while it is writing results to its spool, then a restart.

To make the spool the only place results can be, the collector's link is cut first
(through a proxy) while the scan goes on: every batch found from then on is written to
the spool and none can be acknowledged. Then the collector is killed mid-write and
started again with the same data dir.

What must happen (ADR 0010): the restarted collector sends the spooled batches (they are
committed with the first attempt's identities), the run's lease expires because nobody
runs it any more, the run is handed out again as attempt 2, the collector scans again,
and the repeat doubles nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.chaos.lab import LEASE_ARGS, Lab
from tests.chaos.oracle import Expected, assert_conserved, inventory
from tests.chaos.runs import (
    collector_entry,
    create_discovery,
    runs_started,
    start_run,
    wait_final,
    wait_mid_ingest,
    wait_scan_advanced,
)
from tests.process_harness import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(120)]


def test_collector_killed_while_spooling_and_restarted_loses_and_doubles_nothing(lab: Lab) -> None:
    farm = lab.farm("127.0.72")
    plane = lab.control_plane(scheduler_args=LEASE_ARGS)
    proxy = lab.proxy(plane.gateway_ready["grpc"])
    collector = lab.collector(plane, "edge-spool", [f"grpc://{proxy.address}"])
    create_discovery(plane, "farm", farm, collector="edge-spool")
    run_id = start_run(plane, "farm")

    wait_mid_ingest(lab.database, farm)
    proxy.cut()
    # Several hosts found after the cut: their batches exist only in the spool.
    wait_scan_advanced(farm, hosts=6)
    committed_before_kill = lab.database.device_count()
    killed_at = datetime.now(UTC)
    collector.kill()
    assert committed_before_kill < len(farm.expected)

    proxy.restore()
    collector.restart()
    collector.wait_state("enabled")
    run = wait_final(plane, run_id, timeout=90)

    assert run["state"] == "succeeded", run
    assert_conserved(plane, Expected("lab", farm.expected))
    # Devices first seen before the kill but not committed then came from the spool; had it
    # lost them, the second attempt would have found them later.
    seen_before_kill = [d for d in inventory(plane, "lab") if datetime.fromisoformat(d["first_seen"]) < killed_at]
    assert len(seen_before_kill) > committed_before_kill, (
        f"only {len(seen_before_kill)} devices were first seen before the kill and "
        f"{committed_before_kill} were committed then: the spooled batches were lost"
    )
    # Everything spooled was acknowledged and deleted; nothing was dropped on the way.
    spool = wait_for(
        lambda: (s := collector_entry(plane, "edge-spool").get("spool")) and s["batches"] == 0 and s,
        timeout=10,
        interval=0.5,
        what="the registry to show an empty spool",
    )
    assert not any(spool[k] for k in ("dropped_full", "dropped_expired", "dropped_corrupt")), spool
    # Nobody ran it after the kill, so its lease expired and it was handed out again.
    assert runs_started([collector]) == {run_id: 2}, "the restarted collector should have run it again"
    assert run.get("attempt") == 2, f"`jobs show --json` should say attempt 2: {run}"
