"""A device's whole history through the real gateway and outpostctl, beyond 1,000 entries.

The gateway's inventory is filled before the control plane starts (three job runs: the
device found, 600 ports opened, 600 closed: 1,201 entries), then read back as an operator
does: `devices show` says how many older entries there are, and `devices history` pages
through every one of them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from outpost.db import default_sqlite_url
from services.gateway.inventory.ingest import BatchIngest
from services.gateway.inventory.store.database import open_inventory
from tests.integration.test_inventory_support import batch, device, later, port
from tests.process_harness import ControlPlane

IP = "10.0.0.5"
PORTS = range(1000, 1600)
ENTRIES = 1 + 2 * len(PORTS)


async def fill_inventory(url: str) -> None:
    store = await open_inventory(url)
    try:
        ingest = BatchIngest(store)
        found = [
            [device(IP)],
            [device(IP, *(port(n) for n in PORTS))],
            [device(IP)],
        ]
        for n, devices in enumerate(found, start=1):
            await ingest.ingest(
                batch(f"run-{n}", 1, devices, later(n)),
                instance_uid="uid-1",
                collector="edge-1",
                zone="lab",
                scanned_ports=list(PORTS),
            )
    finally:
        await store.close()


def test_more_than_1000_history_entries_page_completely_through_the_gateway(tmp_path: Path, database_url: str) -> None:
    workdir = tmp_path / "server"
    workdir.mkdir()
    gateway_url = database_url if database_url.startswith("postgresql") else default_sqlite_url(workdir, "gateway")
    asyncio.run(fill_inventory(gateway_url))
    plane = ControlPlane(workdir, database_url).start()
    try:
        shown = plane.ctl("devices", "show", IP)
        assert f"… {ENTRIES - 1000} more: outpostctl devices history {IP}" in shown.stdout

        detail = json.loads(plane.ctl("devices", "show", IP, "--json").stdout)
        assert len(detail["history"]) == 1000 and detail["history_next_page_token"]
        assert detail["history"][-1]["job_run_id"] == "run-3"

        everything = json.loads(plane.ctl("devices", "history", IP, "--json").stdout)
        assert len(everything) == ENTRIES
        assert len({(c["field"], c["old_value"], c["new_value"], c["job_run_id"]) for c in everything}) == ENTRIES
        assert (everything[0]["field"], everything[0]["new_value"]) == ("created", IP)
        assert [c["job_run_id"] for c in everything] == ["run-1"] + ["run-2"] * 600 + ["run-3"] * 600

        newest = plane.ctl("devices", "history", IP, "--zone", "lab", "--limit", "5", "--json")
        assert json.loads(newest.stdout) == everything[-5:]
        assert "showing the newest 5; older entries exist" in newest.stderr

        table = plane.ctl("devices", "history", IP).stdout
        assert "created" in table and "port.1599" in table
    finally:
        plane.stop()
