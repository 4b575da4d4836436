"""Two schedulers and two gateways on one database: every run is created and dispatched once.

Gateway 1 watches scheduler 1, gateway 2 scheduler 2; collector A prefers gateway 1,
collector B gateway 2, both in zone "lab". A zone run wakes both sessions, on different
gateways fed by different schedulers; exactly one collector may get it. A schedule due
every minute is ticked by both schedulers; exactly one run may be created for the minute.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from tests.chaos.lab import Lab
from tests.chaos.oracle import Expected, assert_conserved
from tests.chaos.runs import FINAL_STATES, create_discovery, job_runs, runs_started, start_run, wait_final
from tests.process_harness import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(180)]


def test_two_schedulers_and_two_gateways_create_and_dispatch_each_run_once(lab: Lab) -> None:
    farm = lab.farm("127.0.76", hosts=12)
    plane = lab.control_plane(gateways=2, schedulers=2)
    urls = plane.urls("grpc")
    collectors = [lab.collector(plane, "edge-a", urls), lab.collector(plane, "edge-b", urls[::-1])]
    create_discovery(plane, "zone-farm", farm, zone="lab", rate=200)
    next_minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    plane.ctl(
        "schedules",
        "create",
        "every-minute",
        "--discovery",
        "zone-farm",
        *("--minute", "*", "--hour", "*", "--day-of-month", "*", "--month", "*", "--day-of-week", "*"),
        "--timezone",
        "UTC",
    )

    # A manual run through each scheduler, one after the other.
    for scheduler in plane.schedulers:
        run = wait_final(plane, start_run(plane, "zone-farm", scheduler=scheduler))
        assert run["state"] == "succeeded", run

    def scheduled_runs_final() -> list[dict] | None:
        runs = [r for r in job_runs(plane, "zone-farm") if r["trigger"] == "schedule"]
        return runs if runs and all(r["state"] in FINAL_STATES for r in runs) else None

    # No run can be due before the next whole minute after the schedule was made: wait for
    # the clock first (cheap), then ask the scheduler (an outpostctl process per ask).
    wait_for(lambda: dt.datetime.now(dt.UTC) >= next_minute, timeout=70, interval=0.2, what="the next minute")
    scheduled = wait_for(scheduled_runs_final, timeout=100, interval=1.0, what="the first scheduled run to end")
    assert all(r["state"] == "succeeded" for r in scheduled), scheduled
    per_minute = Counter(r["due_at"] for r in scheduled)
    assert all(n == 1 for n in per_minute.values()), f"a due minute made several runs: {per_minute}"

    runs = job_runs(plane, "zone-farm")
    assert all(r.get("attempt", 1) == 1 for r in runs), runs
    started = runs_started(collectors)
    assert started == {r["id"]: 1 for r in runs}, f"runs started per collector log: {started}; runs: {runs}"
    assert_conserved(plane, Expected("lab", farm.expected))
