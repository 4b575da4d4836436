"""`ListDevices` in keyset pages (issue 13 item 5): every device once, whatever the page size
and whatever is inserted meanwhile; filters; tokens bound to their filters.

The world: 2,500 devices committed through the gateway's real ingest path (`BatchIngest`, as
a session hands batches on), 2,000 in zone "dmz" (10.0.0.0/21) and 500 in zone "lab"
(10.9.0.0/23); every 5th has ssh on 22 open, every 7th http on 80; the last 500 of dmz were
seen an hour later than the rest.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from outpost.gateway.v1 import gateway_pb2
from tests.integration.test_inventory_support import RunningInventory, batch, device, later, port, running_inventory

DMZ = 2000
LAB = 500
BATCH = 250
SCANNED = (22, 80)


def dmz_ip(n: int) -> str:
    return str(ipaddress.ip_address("10.0.0.0") + n)


def lab_ip(n: int) -> str:
    return str(ipaddress.ip_address("10.9.0.0") + n)


def observation(ip: str, n: int) -> object:
    ports = ([port(22, service="ssh")] if n % 5 == 0 else []) + ([port(80, service="http")] if n % 7 == 0 else [])
    return device(ip, *ports)


def chunks(items: list[object]) -> Iterator[list[object]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


async def seed(inventory: RunningInventory) -> None:
    """2,500 devices in 250-device batches, as collectors send them."""
    early = [observation(dmz_ip(n), n) for n in range(DMZ - 500)]
    late = [observation(dmz_ip(n), n) for n in range(DMZ - 500, DMZ)]
    lab = [observation(lab_ip(n), n) for n in range(LAB)]
    sequence = 0
    for zone, observations, hour in (("dmz", early, 0), ("dmz", late, 1), ("lab", lab, 0)):
        for chunk in chunks(observations):
            sequence += 1
            await inventory.commit(batch("run-seed", sequence, chunk, later(hour)), zone=zone, scanned=SCANNED)  # type: ignore[arg-type]


def since(hours: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(later(hours))
    return stamp


async def every_page(
    inventory: RunningInventory, request: gateway_pb2.ListDevicesRequest, *, between_pages: object = None
) -> tuple[list[gateway_pb2.Device], int]:
    found: list[gateway_pb2.Device] = []
    pages = 0
    while True:
        response = await inventory.stub.ListDevices(request)
        pages += 1
        found.extend(response.devices)
        if not response.next_page_token:
            return found, pages
        request.page_token = response.next_page_token
        if between_pages is not None:
            await between_pages(pages)  # type: ignore[operator]


def keys(devices: list[gateway_pb2.Device]) -> list[tuple[str, str]]:
    return [(d.zone, d.ip) for d in devices]


def expected_order() -> list[tuple[str, str]]:
    return [("dmz", dmz_ip(n)) for n in range(DMZ)] + [("lab", lab_ip(n)) for n in range(LAB)]


@pytest.fixture
async def inventory(database_url: str) -> object:
    async with running_inventory(database_url) as running:
        await seed(running)
        yield running


async def test_every_device_is_listed_exactly_once_in_order_for_several_page_sizes(inventory: RunningInventory) -> None:
    for size, pages in ((7, 358), (100, 25), (1000, 3), (0, 25), (50_000, 3)):
        found, count = await every_page(inventory, gateway_pb2.ListDevicesRequest(page_size=size))
        assert keys(found) == expected_order(), size  # numeric IP order: 10.0.1.0 after 10.0.0.255
        assert count == pages, size


async def test_the_zone_filter_pages_one_zone(inventory: RunningInventory) -> None:
    found, pages = await every_page(inventory, gateway_pb2.ListDevicesRequest(zone="lab", page_size=64))
    assert keys(found) == [("lab", lab_ip(n)) for n in range(LAB)]
    assert pages == 8


async def test_devices_inserted_while_paging_appear_once_or_not_at_all_and_none_is_lost(
    inventory: RunningInventory,
) -> None:
    """After every page a new batch lands: devices before, inside and after the reader's
    position (other addresses of both zones). No original device may be missed or doubled."""
    inserted: list[tuple[str, str]] = []

    async def insert(page: int) -> None:
        fresh = [
            ("dmz", str(ipaddress.ip_address("10.0.0.0") + DMZ + page)),  # behind the reader's position: later
            ("dmz", str(ipaddress.ip_address("9.0.0.0") + page)),  # ahead of it: never reached
            ("lab", str(ipaddress.ip_address("10.9.0.0") + LAB + page)),
        ]
        for sequence, (zone, ip) in enumerate(fresh, start=1):
            await inventory.commit(batch(f"run-mid-{page}", sequence, [device(ip)]), zone=zone, scanned=SCANNED)
        inserted.extend(fresh)

    found, _ = await every_page(inventory, gateway_pb2.ListDevicesRequest(page_size=100), between_pages=insert)

    seen = keys(found)
    assert len(seen) == len(set(seen)), "a device was listed twice"
    originals = expected_order()
    assert [k for k in seen if k in set(originals)] == originals
    assert set(seen) - set(originals) <= set(inserted)
    assert ("dmz", "9.0.0.1") not in seen  # inserted ahead of the position after page 1: not seen
    assert ("lab", str(ipaddress.ip_address("10.9.0.0") + LAB + 1)) in seen  # behind it: seen once


@pytest.mark.parametrize(
    ("request_fields", "expected"),
    [
        ({"cidr": "10.0.4.0/23"}, [("dmz", dmz_ip(n)) for n in range(1024, 1536)]),
        ({"cidr": "10.9.1.0/24", "zone": "lab"}, [("lab", lab_ip(n)) for n in range(256, LAB)]),
        ({"cidr": "10.0.0.7/32"}, [("dmz", "10.0.0.7")]),
        ({"port": 22}, [k for n, k in enumerate(expected_order()) if (n if n < DMZ else n - DMZ) % 5 == 0]),
        ({"service": "HTTP", "zone": "lab"}, [("lab", lab_ip(n)) for n in range(LAB) if n % 7 == 0]),
        ({"port": 22, "service": "http"}, [k for n, k in enumerate(expected_order()) if (n % DMZ) % 35 == 0]),
        ({"port": 8080}, []),
        ({"cidr": "2001:db8::/32"}, []),
    ],
)
async def test_filters_select_exactly_the_matching_devices_across_pages(
    inventory: RunningInventory, request_fields: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    found, _ = await every_page(inventory, gateway_pb2.ListDevicesRequest(page_size=90, **request_fields))  # type: ignore[arg-type]
    assert keys(found) == expected


async def test_seen_since_keeps_only_devices_seen_at_or_after_it(inventory: RunningInventory) -> None:
    found, _ = await every_page(inventory, gateway_pb2.ListDevicesRequest(page_size=200, seen_since=since(1)))
    assert keys(found) == [("dmz", dmz_ip(n)) for n in range(DMZ - 500, DMZ)]
    everything, _ = await every_page(inventory, gateway_pb2.ListDevicesRequest(page_size=1000, seen_since=since(0)))
    assert len(everything) == DMZ + LAB


async def test_a_token_sent_with_other_filters_is_refused(inventory: RunningInventory) -> None:
    first = await inventory.stub.ListDevices(gateway_pb2.ListDevicesRequest(zone="dmz", page_size=10))
    for changed in (
        gateway_pb2.ListDevicesRequest(zone="lab", page_token=first.next_page_token),
        gateway_pb2.ListDevicesRequest(zone="dmz", port=22, page_token=first.next_page_token),
        gateway_pb2.ListDevicesRequest(page_token=first.next_page_token),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await inventory.stub.ListDevices(changed)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "issued for other filters" in (refused.value.details() or "")
    # The same filters, another page size: allowed (AIP-158).
    same = await inventory.stub.ListDevices(
        gateway_pb2.ListDevicesRequest(zone="dmz", page_size=3, page_token=first.next_page_token)
    )
    assert [d.ip for d in same.devices] == [dmz_ip(n) for n in range(10, 13)]


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"cidr": "10.0.0.1/24"}, "has host bits set; did you mean 10.0.0.0/24?"),
        ({"cidr": "ten"}, "is not a network"),
        ({"port": 70000}, "is not a port number"),
        ({"page_token": "garbage!"}, "page token is not valid"),
    ],
)
async def test_bad_filters_are_refused_with_a_clear_message(
    inventory: RunningInventory, request_fields: dict[str, object], message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await inventory.stub.ListDevices(gateway_pb2.ListDevicesRequest(**request_fields))  # type: ignore[arg-type]
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (refused.value.details() or "")


async def test_an_old_client_gets_the_first_page_and_a_token_not_a_silent_cut(inventory: RunningInventory) -> None:
    default = await inventory.stub.ListDevices(gateway_pb2.ListDevicesRequest())
    assert len(default.devices) == 100 and default.next_page_token
    old_limit = await inventory.stub.ListDevices(gateway_pb2.ListDevicesRequest(limit=1000))
    assert len(old_limit.devices) == 1000 and old_limit.next_page_token
