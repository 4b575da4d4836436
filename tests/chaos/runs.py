"""Discovery runs as the chaos tests drive them: enrol collectors, start runs, wait on conditions.

Every wait polls a condition with a deadline; none sleeps for a fixed time. "Mid-ingest"
is a condition too: some of the farm's devices are committed to the inventory and not
all of them (`wait_mid_ingest`), which the slow scan rate (`SCAN_RATE` new connections
per second over the farm's 40 hosts x 3 ports) keeps true for several seconds.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tests.chaos.database import ChaosDatabase
from tests.peers.listener_farm import ListenerFarm
from tests.process_harness import Collector, ControlPlane, wait_for

SCAN_RATE = 12
# One `outpostctl` call on a busy two-core machine: a status can change just after a call
# started, and the next call starts up to this much later.
CLI_SLACK_SECONDS = 1.5
FINAL_STATES = frozenset({"succeeded", "failed", "timed_out", "cancelled"})
RUN_TIMEOUT = 60.0


def create_discovery(
    plane: ControlPlane,
    name: str,
    farm: ListenerFarm,
    *,
    collector: str = "",
    zone: str = "",
    rate: int = SCAN_RATE,
) -> None:
    """A TCP-only discovery of the whole farm, on one collector or any collector of a zone."""
    where = ["--collector", collector] if collector else ["--zone", zone]
    plane.ctl(
        "discoveries",
        "create",
        name,
        "--targets",
        farm.targets,
        "--ports",
        farm.ports_arg,
        "--probes",
        "tcp",
        "--rate",
        str(rate),
        *where,
    )


def start_run(plane: ControlPlane, discovery: str, **ctl: Any) -> str:
    """`outpostctl discoveries run NAME --json` (no wait); the new run's id."""
    return str(json.loads(plane.ctl("discoveries", "run", discovery, "--json", **ctl).stdout)["id"])


def job_run(plane: ControlPlane, run_id: str) -> dict[str, Any]:
    """`outpostctl jobs show ID --json`."""
    return json.loads(plane.ctl("jobs", "show", run_id, "--json").stdout)


def job_runs(plane: ControlPlane, discovery: str) -> list[dict[str, Any]]:
    return json.loads(plane.ctl("jobs", "list", "--discovery", discovery, "--json").stdout)


def wait_final(plane: ControlPlane, run_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
    """Wait until the run is succeeded, failed, timed out or cancelled; the run."""
    last: dict[str, Any] = {}

    def final() -> dict[str, Any] | None:
        last.update(job_run(plane, run_id))
        return dict(last) if last.get("state") in FINAL_STATES else None

    try:
        return wait_for(final, timeout, interval=0.3, what=f"job run {run_id} to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {last}") from None


def wait_mid_ingest(database: ChaosDatabase, farm: ListenerFarm, at_least: int = 8, timeout: float = 45.0) -> int:
    """Wait until `at_least` of the farm's devices are committed and not all; the count then."""
    total = len(farm.expected)

    def committed() -> int | None:
        count = database.device_count()
        return count if count >= at_least else None

    count: int = wait_for(committed, timeout, interval=0.05, what=f"{at_least} of {total} devices committed")
    assert count < total, f"the scan ended ({count}/{total} devices) before the test could strike: scan slower"
    return count


def wait_scan_advanced(farm: ListenerFarm, hosts: int, timeout: float = 30.0) -> None:
    """Wait until the scan probed `hosts` more of the farm's listening hosts than it had now."""
    start = farm.hosts_probed()
    wait_for(
        lambda: farm.hosts_probed() >= start + hosts,
        timeout,
        interval=0.05,
        what=f"the scan to probe {hosts} more hosts (had {start})",
    )


def runs_started(collectors: Iterable[Collector]) -> Counter[str]:
    """How many times each job run was started, over these collectors' whole logs."""
    return Counter(
        event["job_run_id"]
        for collector in collectors
        for event in collector.log_events()
        if event.get("event") == "job_run_started"
    )


def collector_entry(plane: ControlPlane, name: str) -> dict[str, Any]:
    """The collector as `outpostctl collectors list --json` shows it."""
    entries = [c for c in plane.collectors() if c["name"] == name]
    assert len(entries) == 1, f"collectors list has {len(entries)} entries named {name}"
    return entries[0]


def online(plane: ControlPlane, name: str) -> bool:
    """`online` of `outpostctl collectors list --json`."""
    entry = collector_entry(plane, name)
    assert "online" in entry, f"`collectors list --json` has no 'online' field: {entry}"
    return bool(entry["online"])


def seconds_until_offline(plane: ControlPlane, name: str, since: float, timeout: float) -> float:
    """Seconds from `since` (time.monotonic()) to the start of the first call that showed `name` offline."""

    def offline_since_asked() -> float | None:
        asked = time.monotonic()
        return None if online(plane, name) else asked

    asked_at: float = wait_for(offline_since_asked, timeout, interval=0.1, what=f"{name} offline")
    return asked_at - since
