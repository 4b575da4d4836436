"""A device's history in pages: every entry once, newest first, beyond the old 1,000 cut.

The world: one device whose first run finds it, whose second run finds 600 ports open and
whose third finds them all closed: 1 + 600 + 600 = 1,201 entries, three job runs, so many
entries share a `changed_at` and the (changed_at, id) keyset has to break the ties.
"""

from __future__ import annotations

import grpc
import pytest

from outpost.gateway.v1 import gateway_pb2
from tests.integration.test_inventory_support import RunningInventory, batch, device, later, port, running_inventory

PORTS = range(1000, 1600)
ENTRIES = 1 + 2 * len(PORTS)
IP = "10.0.0.5"


async def many_changes(inventory: RunningInventory) -> None:
    await inventory.commit(batch("run-1", 1, [device(IP)]), scanned=PORTS)
    await inventory.commit(batch("run-2", 1, [device(IP, *(port(n) for n in PORTS))], later(1)), scanned=PORTS)
    await inventory.commit(batch("run-3", 1, [device(IP)], later(2)), scanned=PORTS)


async def all_pages(
    inventory: RunningInventory, page_size: int, token: str = ""
) -> tuple[list[gateway_pb2.DeviceChange], int]:
    changes: list[gateway_pb2.DeviceChange] = []
    pages = 0
    while True:
        response = await inventory.stub.ListDeviceHistory(
            gateway_pb2.ListDeviceHistoryRequest(ip=IP, page_size=page_size, page_token=token)
        )
        pages += 1
        changes.extend(response.changes)
        token = response.next_page_token
        if not token:
            return changes, pages


def key(change: gateway_pb2.DeviceChange) -> tuple[str, str, str, str]:
    return (change.field, change.old_value, change.new_value, change.job_run_id)


async def test_more_than_1000_history_entries_page_completely_newest_first(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        await many_changes(inventory)

        changes, pages = await all_pages(inventory, page_size=100)

        assert (len(changes), pages) == (ENTRIES, 13)
        assert len(set(map(key, changes))) == ENTRIES
        assert key(changes[-1]) == ("created", "", IP, "run-1")
        runs = [c.job_run_id for c in changes]
        assert runs == ["run-3"] * 600 + ["run-2"] * 600 + ["run-1"]
        assert {key(c) for c in changes if c.job_run_id == "run-3"} == {
            (f"port.{n}", "open", "closed", "run-3") for n in PORTS
        }
        default_pages, _ = await all_pages(inventory, page_size=0)
        assert list(map(key, default_pages)) == list(map(key, changes))
        largest, largest_pages = await all_pages(inventory, page_size=50_000)
        assert (len(largest), largest_pages) == (ENTRIES, 2)  # at most 1,000 a page


async def test_get_device_returns_the_newest_page_oldest_first_and_a_token_for_the_rest(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        await many_changes(inventory)

        default = await inventory.device(IP)
        assert len(default.history) == 1000 and default.history_next_page_token
        small = await inventory.stub.GetDevice(gateway_pb2.GetDeviceRequest(ip=IP, history_page_size=3))
        newest, _ = await all_pages(inventory, page_size=3)
        assert list(map(key, small.history)) == list(map(key, newest[:3]))[::-1]

        rest, _ = await all_pages(inventory, page_size=500, token=small.history_next_page_token)
        assert len(rest) == ENTRIES - 3
        assert key(rest[-1]) == ("created", "", IP, "run-1")
        next_page = await inventory.stub.GetDevice(
            gateway_pb2.GetDeviceRequest(ip=IP, history_page_size=3, history_page_token=small.history_next_page_token)
        )
        assert list(map(key, next_page.history)) == list(map(key, rest[:3]))[::-1]


async def test_a_device_with_a_short_history_has_no_next_page(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        await inventory.commit(batch("run-1", 1, [device(IP)]))
        response = await inventory.device(IP)
        assert ([key(c) for c in response.history], response.history_next_page_token) == (
            [("created", "", IP, "run-1")],
            "",
        )


async def test_entries_recorded_while_paging_shift_no_page(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        await many_changes(inventory)
        first = await inventory.stub.ListDeviceHistory(gateway_pb2.ListDeviceHistoryRequest(ip=IP, page_size=100))

        await inventory.commit(batch("run-4", 1, [device(IP, hostname="new.example")], later(3)), scanned=[])
        rest, _ = await all_pages(inventory, page_size=100, token=first.next_page_token)

        seen = list(map(key, first.changes)) + list(map(key, rest))
        assert len(seen) == len(set(seen)) == ENTRIES
        assert ("hostname", "", "new.example", "run-4") not in seen
        newest, _ = await all_pages(inventory, page_size=1000)
        assert key(newest[0]) == ("hostname", "", "new.example", "run-4")


async def test_a_token_that_is_not_one_or_is_another_devices_is_refused(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        await many_changes(inventory)
        await inventory.commit(batch("run-9", 1, [device("10.0.0.6")]))
        first = await inventory.stub.ListDeviceHistory(gateway_pb2.ListDeviceHistoryRequest(ip=IP, page_size=10))

        for request in (
            gateway_pb2.ListDeviceHistoryRequest(ip=IP, page_token="not-a-token"),
            gateway_pb2.ListDeviceHistoryRequest(ip="10.0.0.6", page_token=first.next_page_token),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await inventory.stub.ListDeviceHistory(request)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await inventory.stub.ListDeviceHistory(gateway_pb2.ListDeviceHistoryRequest(ip="10.9.9.9"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
