"""`devices list --zone Z`: how long the first page (and a deep page) takes through the RPC, as the inventory grows.

    .venv/bin/python bench/list_pages.py [--sizes 10000,100000,1000000] [--zones 10] [--repeats 15]
        [--json bench/results/list_pages.json]
    .venv/bin/python bench/list_pages.py --quick      # 10,000 devices only, a few seconds

Goal (issue 13 item 5): the first page of `devices list --zone Z` under 100 ms with
1,000,000 devices.

Theory of operation
-------------------
Per size N, a fresh PostgreSQL database (`outpost_bench_<random>` on `--admin-dsn`,
dropped at the end) migrated by the real inventory store (so the keyset index of gateway
migration 0007 is there); N devices seeded by one binary COPY, spread evenly over
`--zones` zones (addresses 10.x.y.z, numeric order differing from insertion order), every
5th with port 22 (ssh) open, then ANALYZE. The real `InventoryService` is served in-process
on 127.0.0.1:<free port> through `outpost.runtime.build_grpc_server` (error mapping, no
admin-token check: that cost is `admin_auth_cost.py`'s), and called over a real gRPC
channel, so each figure is the whole RPC: decode, filter check, the keyset query, the
ports and missed-runs look-ups of the page, notes, encode.

Cases, each timed `--repeats` times after one warm-up call; median and p90 in ms:

- `zone, first page (100)`: `ListDevices(zone=Z)`, the default page size;
- `zone, first page (1000)`: `page_size=1000`, what `outpostctl devices list` asks for;
- `zone, middle page (100)`: the page after a token positioned half-way through zone Z
  (keyset: it should cost what the first page costs, however deep);
- `zone + port 22, first page (100)`: a filter through the open-ports EXISTS;
- `no zone, first page (100)`: the whole inventory in (zone, IP) order.

The machine has 2 cores shared with other work; timings are noisy (p90 shows how much).
Nothing here asserts; it prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from harness.machine import finish, machine, markdown_table
from harness.plane import ADMIN_DSN, TempDatabase

from outpost import paging
from outpost.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from outpost.runtime import build_grpc_server
from services.gateway.api.inventory_servicer import SERVICE_NAME, InventoryServicer
from services.gateway.inventory.domain.device_filter import device_filter
from services.gateway.inventory.store.database import open_inventory
from services.gateway.inventory.store.queries import DEVICES_LIST, ip_sort_key

COPY_CHUNK = 100_000
DEVICE_COLUMNS = [
    "id",
    "zone",
    "ip",
    "ip_sort",
    "hostname",
    "mac_addresses",
    "snmp_engine_id",
    "facts",
    "first_seen",
    "last_seen",
    "last_collector",
    "last_job_run_id",
    "retired_at",
    "retired_reason",
]
PORT_COLUMNS = [
    "device_id",
    "protocol",
    "port",
    "service",
    "banner",
    "details",
    "first_seen",
    "last_seen",
    "open",
    "state",
]


def zone_of(n: int, zones: int) -> str:
    return f"zone-{n % zones:02d}"


async def seed(dsn: str, count: int, zones: int) -> float:
    """`count` devices over `zones` zones by binary COPY; seconds taken (with ANALYZE)."""
    started = time.perf_counter()
    seen = datetime.now(UTC) - timedelta(hours=1)
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    conn = await asyncpg.connect(dsn)
    try:
        for start in range(0, count, COPY_CHUNK):
            devices, ports = [], []
            for n in range(start, min(count, start + COPY_CHUNK)):
                # Scatter addresses so insertion order is not (zone, IP) order.
                ip = str(ipaddress.IPv4Address(base + (n * 7919) % (1 << 24)))
                device_id = uuid.uuid4().hex
                zone = zone_of(n, zones)
                devices.append(
                    (device_id, zone, ip, ip_sort_key(ip), "", "[]", "", "{}", seen, seen, "edge", "run-0", None, "")
                )
                if n % 5 == 0:
                    ports.append((device_id, "tcp", 22, "ssh", "SSH-2.0-OpenSSH_9.6", "{}", seen, seen, True, "open"))
            await conn.copy_records_to_table("devices", schema_name="gateway", records=devices, columns=DEVICE_COLUMNS)
            await conn.copy_records_to_table("device_ports", schema_name="gateway", records=ports, columns=PORT_COLUMNS)
        await conn.execute("ANALYZE gateway.devices")
        await conn.execute("ANALYZE gateway.device_ports")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def middle_token(dsn: str, zone: str) -> str:
    """A page token positioned half-way through `zone` (as a client that paged there holds)."""
    conn = await asyncpg.connect(dsn)
    try:
        total = await conn.fetchval("SELECT count(*) FROM gateway.devices WHERE zone = $1", zone)
        row = await conn.fetchrow(
            "SELECT zone, ip_sort, id FROM gateway.devices WHERE zone = $1"
            " ORDER BY zone, ip_sort, id OFFSET $2 LIMIT 1",
            zone,
            total // 2,
        )
    finally:
        await conn.close()
    filters = device_filter(zone=zone).digest_fields()
    return paging.encode_token(DEVICES_LIST, filters, (row["zone"], row["ip_sort"], row["id"]))


async def timed(call: Callable[[], Awaitable[Any]], repeats: int) -> dict[str, Any]:
    await call()  # warm-up: connection, plan cache
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[min(len(times) - 1, int(len(times) * 0.9))], 2),
        "min_ms": round(times[0], 2),
        "max_ms": round(times[-1], 2),
    }


async def one_size(count: int, zones: int, repeats: int, admin_dsn: str) -> dict[str, Any]:
    database = await TempDatabase(admin_dsn=admin_dsn).create()
    try:
        store = await open_inventory(database.url)
        server, _health = build_grpc_server(service_names=[SERVICE_NAME], auth=None)
        gateway_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryServicer(store), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            seed_seconds = await seed(database.dsn, count, zones)
            zone = zone_of(0, zones)
            token = await middle_token(database.dsn, zone)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = gateway_pb2_grpc.InventoryServiceStub(channel)
                cases: dict[str, gateway_pb2.ListDevicesRequest] = {
                    "zone, first page (100)": gateway_pb2.ListDevicesRequest(zone=zone),
                    "zone, first page (1000)": gateway_pb2.ListDevicesRequest(zone=zone, page_size=1000),
                    "zone, middle page (100)": gateway_pb2.ListDevicesRequest(zone=zone, page_token=token),
                    "zone + port 22, first page (100)": gateway_pb2.ListDevicesRequest(zone=zone, port=22),
                    "no zone, first page (100)": gateway_pb2.ListDevicesRequest(),
                }
                results = {}
                for name, request in cases.items():
                    reply = await stub.ListDevices(request)
                    results[name] = {
                        **await timed(lambda request=request: stub.ListDevices(request), repeats),
                        "rows": len(reply.devices),
                        "next_page": bool(reply.next_page_token),
                    }
        finally:
            await server.stop(0)
            await store.close()
    finally:
        await database.drop()
    return {"devices": count, "zones": zones, "per_zone": count // zones, "seed_seconds": round(seed_seconds, 1)} | {
        "cases": results
    }


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, ...]] = [("devices", "case", "rows", "median ms", "p90 ms", "min-max ms")]
    for size in results["sizes"]:
        for name, case in size["cases"].items():
            rows.append(
                (
                    f"{size['devices']:,}",
                    name,
                    str(case["rows"]),
                    f"{case['median_ms']:.1f}",
                    f"{case['p90_ms']:.1f}",
                    f"{case['min_ms']:.1f}-{case['max_ms']:.1f}",
                )
            )
    return markdown_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--admin-dsn", default=ADMIN_DSN)
    parser.add_argument("--json", type=Path, default=Path("bench/results/list_pages.json"))
    parser.add_argument("--quick", action="store_true", help="10,000 devices, 5 repeats")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = "10000", 5
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "repeats": args.repeats, "sizes": []}
    for count in (int(s) for s in args.sizes.split(",")):
        results["sizes"].append(asyncio.run(one_size(count, args.zones, args.repeats, args.admin_dsn)))
        print(f"{count:,} devices done", flush=True)
    finish(results, table(results), args.json, started)


if __name__ == "__main__":
    main()
