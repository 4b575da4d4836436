"""Every page through the real services and outpostctl (issue 13 item 5): 2,500 devices and
250 job runs listed completely; `--limit` says more exist; JSON is complete; filters; a
token sent with other filters is refused with the service's message.

The gateway's inventory is filled before the control plane starts (2,500 devices in
250-device batches through the ingest path); the job runs are started through the real
scheduler's StartDiscovery with the bootstrap admin token.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from pathlib import Path

import grpc

from outpost.auth import bearer
from outpost.db import default_sqlite_url
from outpost.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.gateway.inventory.ingest import BatchIngest
from services.gateway.inventory.store.database import open_inventory
from tests.integration.test_inventory_support import batch, device, later, port
from tests.process_harness import ControlPlane

DMZ = 2000
LAB = 500
RUNS = 250


def dmz_ip(n: int) -> str:
    return str(ipaddress.ip_address("10.0.0.0") + n)


def lab_ip(n: int) -> str:
    return str(ipaddress.ip_address("10.9.0.0") + n)


async def fill_inventory(url: str) -> None:
    store = await open_inventory(url)
    try:
        ingest = BatchIngest(store)
        found = [("dmz", dmz_ip(n), n) for n in range(DMZ)] + [("lab", lab_ip(n), n) for n in range(LAB)]
        for sequence, start in enumerate(range(0, len(found), 250), start=1):
            chunk = found[start : start + 250]
            observations = [device(ip, *([port(22, service="ssh")] if n % 5 == 0 else [])) for _, ip, n in chunk]
            await ingest.ingest(
                batch("run-seed", sequence, observations, later(1 if start >= 1500 else 0)),  # the last 1,000 later
                instance_uid="uid-1",
                collector="edge-1",
                zone=chunk[0][0],
                scanned_ports=[22],
            )
    finally:
        await store.close()


async def start_runs(plane: ControlPlane) -> None:
    address = plane.scheduler_ready["grpc"]
    token = plane.admin_token
    async with grpc.aio.insecure_channel(address, interceptors=bearer.aio_interceptors(lambda _: token)) as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        for name in ("alpha", "beta"):
            discovery = scheduler_pb2.Discovery(name=name, zone="dmz", targets=["10.0.0.0/30"], ports=[22])
            await stub.CreateDiscovery(scheduler_pb2.CreateDiscoveryRequest(discovery=discovery, allow_unknown=True))
        for n in range(RUNS):
            await stub.StartDiscovery(scheduler_pb2.StartDiscoveryRequest(name=("alpha", "beta")[n % 2]))


def rows(stdout: str) -> list[list[str]]:
    """Table rows (header dropped) as their cells split on whitespace."""
    return [line.split() for line in stdout.splitlines()[1:]]


def test_devices_and_job_runs_list_every_page_through_outpostctl(tmp_path: Path, database_url: str) -> None:
    workdir = tmp_path / "server"
    workdir.mkdir()
    gateway_url = database_url if database_url.startswith("postgresql") else default_sqlite_url(workdir, "gateway")
    asyncio.run(fill_inventory(gateway_url))
    plane = ControlPlane(workdir, database_url).start()
    try:
        expected = [("dmz", dmz_ip(n)) for n in range(DMZ)] + [("lab", lab_ip(n)) for n in range(LAB)]

        table = plane.ctl("devices", "list")
        assert [(r[1], r[0]) for r in rows(table.stdout)] == expected  # every device once, in order
        assert table.stderr == ""

        everything = json.loads(plane.ctl("devices", "list", "--json").stdout)
        assert [(d["zone"], d["ip"]) for d in everything] == expected

        limited = plane.ctl("devices", "list", "--limit", "10")
        assert [r[0] for r in rows(limited.stdout)] == [dmz_ip(n) for n in range(10)]
        assert "… more devices exist: raise --limit, or continue with --page-token " in limited.stderr

        first = json.loads(plane.ctl("devices", "list", "--limit", "1200", "--json").stdout)
        assert len(first["devices"]) == 1200 and first["next_page_token"]
        rest = json.loads(plane.ctl("devices", "list", "--page-token", first["next_page_token"], "--json").stdout)
        assert [(d["zone"], d["ip"]) for d in first["devices"] + rest] == expected

        whole = json.loads(plane.ctl("devices", "list", "--limit", "5000", "--json").stdout)
        assert len(whole["devices"]) == DMZ + LAB and whole["next_page_token"] == ""

        ssh_lab = json.loads(plane.ctl("devices", "list", "--zone", "lab", "--port", "22", "--json").stdout)
        assert [d["ip"] for d in ssh_lab] == [lab_ip(n) for n in range(0, LAB, 5)]
        by_service = json.loads(plane.ctl("devices", "list", "--service", "SSH", "--json").stdout)
        assert len(by_service) == (DMZ + LAB) // 5
        network = json.loads(plane.ctl("devices", "list", "--cidr", "10.0.1.0/24", "--json").stdout)
        assert [d["ip"] for d in network] == [dmz_ip(n) for n in range(256, 512)]
        seen = json.loads(plane.ctl("devices", "list", "--seen-since", later(1).isoformat(), "--json").stdout)
        assert [d["ip"] for d in seen] == [dmz_ip(n) for n in range(1500, DMZ)] + [lab_ip(n) for n in range(LAB)]

        other = plane.ctl("devices", "list", "--zone", "lab", "--page-token", first["next_page_token"], check=False)
        assert other.returncode == 1
        assert "issued for other filters" in other.stderr
        bad = plane.ctl("devices", "list", "--cidr", "10.0.1.1/24", check=False)
        assert bad.returncode == 1 and "did you mean 10.0.1.0/24" in bad.stderr

        asyncio.run(start_runs(plane))
        runs = json.loads(plane.ctl("jobs", "list", "--json").stdout)
        assert len(runs) == RUNS and len({r["id"] for r in runs}) == RUNS  # the old CLI stopped at 100
        jobs_table = plane.ctl("jobs", "list")
        assert [r[0] for r in rows(jobs_table.stdout)] == [r["id"] for r in runs]
        newest = plane.ctl("jobs", "list", "--limit", "3")
        assert [r[0] for r in rows(newest.stdout)] == [r["id"] for r in runs[:3]]
        assert "… more job runs exist" in newest.stderr
        beta = json.loads(plane.ctl("jobs", "list", "--discovery", "beta", "--state", "queued", "--json").stdout)
        assert [r["id"] for r in beta] == [r["id"] for r in runs if r["discovery"] == "beta"]
        recent = json.loads(plane.ctl("jobs", "list", "--since", "1h", "--json").stdout)
        assert [r["id"] for r in recent] == [r["id"] for r in runs]
        assert json.loads(plane.ctl("jobs", "list", "--since", "2099-01-01T00:00Z", "--json").stdout) == []
    finally:
        plane.stop()
