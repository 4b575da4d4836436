"""Result batches committed to the inventory and read back through InventoryService."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from sqlalchemy import event

from outpost.agent.v1 import agent_pb2
from tests.integration.test_inventory_support import (
    batch,
    device,
    later,
    port,
    running_inventory,
)

MAC_A = "aa:bb:cc:00:00:0a"


def web(banner22: str = "SSH-2.0-OpenSSH_9.6", *, with_80: bool = True) -> agent_pb2.DeviceObservation:
    ports = [port(22, banner22, "ssh")]
    if with_80:
        ports.append(port(80, "", "http", http=agent_pb2.HttpInfo(status=200, server="nginx", title="Welcome")))
    return device(
        "10.0.0.5",
        *ports,
        hostname="web.example",
        macs=["AA:BB:CC:00:00:05"],
        snmp=agent_pb2.SnmpFacts(sys_name="web", engine_id="80001f8805", sys_uptime_centiseconds=100_00),
    )


async def test_a_committed_batch_is_listed_by_the_inventory_service(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        result = await inventory.commit(batch("run-1", 1, [web(), device("10.0.0.10", port(443, service="https"))]))

        assert (result.duplicate, result.devices, result.changes) == (False, 2, 2)
        listed = await inventory.devices()
        assert [(d.zone, d.ip) for d in listed] == [("dmz", "10.0.0.5"), ("dmz", "10.0.0.10")]
        first = listed[0]
        assert first.hostname == "web.example"
        assert list(first.mac_addresses) == ["aa:bb:cc:00:00:05"]
        assert first.snmp_engine_id == "80001f8805"
        assert dict(first.facts) == {"snmp.sys_name": "web", "snmp.sys_uptime_seconds": "100"}
        assert [(p.port, p.protocol, p.service, p.banner) for p in first.ports] == [
            (22, "tcp", "ssh", "SSH-2.0-OpenSSH_9.6"),
            (80, "tcp", "http", ""),
        ]
        assert dict(first.ports[1].details) == {"http.status": "200", "http.server": "nginx", "http.title": "Welcome"}
        assert (first.last_collector, first.last_job_run_id) == ("edge-1", "run-1")
        assert first.first_seen.ToDatetime().isoformat() == "2026-03-01T08:00:00"
        assert await inventory.history("10.0.0.5") == [("created", "", "10.0.0.5", "run-1")]


async def test_a_batch_committed_twice_is_a_duplicate_and_changes_nothing(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        sent = batch("run-1", 7, [web(), device("10.0.0.6", port(22))])
        await inventory.commit(sent)
        devices_before = await inventory.devices()
        history_before = await inventory.history("10.0.0.5")
        rows_before = await inventory.row_counts()

        again = await inventory.commit(sent)

        assert (again.duplicate, again.devices, again.changes) == (True, 0, 0)
        assert await inventory.devices() == devices_before
        assert await inventory.history("10.0.0.5") == history_before
        assert (
            await inventory.row_counts()
            == rows_before
            == {
                "devices": 2,
                "device_ports": 3,
                "device_changes": 2,
                "ingested_batches": 1,
            }
        )


async def test_a_runs_next_attempt_is_stored_beside_the_first_and_doubles_no_device(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        found = [web(), device("10.0.0.6", port(22))]
        first = await inventory.commit(batch("run-1", 1, found, attempt=1))
        # The lease expired; the run went out again as attempt 2, which numbers from 1 again
        # and finds the same hosts. Same run, same sequence: only the attempt differs.
        second = await inventory.commit(batch("run-1", 1, found, later(1), attempt=2))

        assert (first.duplicate, second.duplicate) == (False, False)
        assert (second.devices, second.changes) == (2, 0)
        assert await inventory.row_counts() == {
            "devices": 2,
            "device_ports": 3,
            "device_changes": 2,
            "ingested_batches": 2,
        }
        assert await inventory.history("10.0.0.5") == [("created", "", "10.0.0.5", "run-1")]
        # Each attempt's resend is still a duplicate of its own batch.
        for attempt in (1, 2):
            assert (await inventory.commit(batch("run-1", 1, found, attempt=attempt))).duplicate


async def test_a_second_run_records_exactly_the_port_that_closed_and_the_banner_that_changed(
    database_url: str,
) -> None:
    async with running_inventory(database_url) as inventory:
        await inventory.commit(batch("run-1", 1, [web()]))

        result = await inventory.commit(batch("run-2", 1, [web("SSH-2.0-OpenSSH_9.7", with_80=False)], later(1)))

        assert result.changes == 2
        assert await inventory.history("10.0.0.5") == [
            ("created", "", "10.0.0.5", "run-1"),
            ("port.22.banner", "SSH-2.0-OpenSSH_9.6", "SSH-2.0-OpenSSH_9.7", "run-2"),
            ("port.80", "open", "closed", "run-2"),
        ]
        shown = (await inventory.device("10.0.0.5")).device
        # Every known port is served with its state; the closed one keeps what it said.
        assert [(p.port, p.banner, p.state) for p in shown.ports] == [
            (22, "SSH-2.0-OpenSSH_9.7", "open"),
            (80, "", "closed"),
        ]
        assert shown.ports[0].first_seen.ToDatetime() < shown.ports[0].last_seen.ToDatetime()


async def test_a_port_the_run_did_not_scan_is_not_closed(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        await inventory.commit(batch("run-1", 1, [web()]))

        result = await inventory.commit(batch("run-2", 1, [web(with_80=False)], later(1)), scanned=[22, 443])

        assert result.changes == 0
        assert [p.port for p in (await inventory.device("10.0.0.5")).device.ports] == [22, 80]
        assert await inventory.history("10.0.0.5") == [("created", "", "10.0.0.5", "run-1")]


async def test_a_device_that_moved_ip_with_the_same_mac_stays_one_device(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        await inventory.commit(batch("run-1", 1, [device("10.0.0.20", port(22), hostname="nas", macs=[MAC_A])]))

        await inventory.commit(batch("run-2", 1, [device("10.0.0.21", port(22), macs=[MAC_A])], later(1)))

        listed = await inventory.devices()
        assert [(d.ip, d.hostname) for d in listed] == [("10.0.0.21", "nas")]
        assert await inventory.history("10.0.0.21") == [
            ("created", "", "10.0.0.20", "run-1"),
            ("ip", "10.0.0.20", "10.0.0.21", "run-2"),
        ]
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await inventory.device("10.0.0.20")
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_device_may_take_the_ip_another_one_left_in_the_same_batch(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        await inventory.commit(batch("run-1", 1, [device("10.0.0.20", macs=[MAC_A], hostname="nas")]))

        await inventory.commit(
            batch(
                "run-2",
                1,
                [device("10.0.0.20", hostname="printer"), device("10.0.0.21", macs=[MAC_A])][::-1],
                later(1),
            )
        )

        assert [(d.ip, d.hostname) for d in await inventory.devices()] == [
            ("10.0.0.20", "printer"),
            ("10.0.0.21", "nas"),
        ]


async def test_the_same_ip_in_two_zones_is_two_devices_and_get_without_zone_is_ambiguous(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        await inventory.commit(batch("run-1", 1, [device("10.0.0.1", hostname="a")]), zone="site-a")
        await inventory.commit(
            batch("run-2", 1, [device("10.0.0.1", hostname="b")]), zone="site-b", instance_uid="other", collector="e2"
        )

        assert [(d.zone, d.hostname) for d in await inventory.devices()] == [("site-a", "a"), ("site-b", "b")]
        assert [d.hostname for d in await inventory.devices(zone="site-b")] == ["b"]
        with pytest.raises(grpc.aio.AioRpcError) as ambiguous:
            await inventory.device("10.0.0.1")
        assert ambiguous.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert ambiguous.value.details() == "ip 10.0.0.1 exists in zones site-a, site-b; pass --zone"
        assert (await inventory.device("10.0.0.1", zone="site-b")).device.hostname == "b"

        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await inventory.device("10.0.0.1", zone="site-c")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert missing.value.details() == "no device with ip 10.0.0.1 in zone 'site-c'"
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await inventory.device("10.0.0.300")
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert invalid.value.details() == "'10.0.0.300' is not an IP address"


async def test_500_devices_commit_with_a_few_bulk_statements(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        hosts = [
            device(
                f"10.1.{i // 250}.{i % 250 + 1}",
                port(22, "SSH-2.0"),
                port(80),
                port(443),
                macs=[f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"],
            )
            for i in range(500)
        ]
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement.split(None, 1)[0].upper())

        event.listen(inventory.store.engine.sync_engine, "before_cursor_execute", count)
        try:
            created = await inventory.commit(batch("run-1", 1, hosts))
            first_run = len(statements)
            statements.clear()
            updated = await inventory.commit(batch("run-2", 1, hosts[:250] + hosts[300:], later(1)))
            second_run = len(statements)
        finally:
            event.remove(inventory.store.engine.sync_engine, "before_cursor_execute", count)

        assert (created.devices, created.changes) == (500, 500)
        assert (updated.devices, updated.changes) == (450, 0)
        rows_written = 500 + 1500 + 500  # devices, ports, history of the first run
        # The MAC lookup reads device_macs, then devices by id (one SELECT more than one
        # IN-subquery); new devices add one INSERT into device_macs, unchanged MACs none.
        assert first_run <= 9 < rows_written // 100, statements
        assert second_run <= 8, statements
        assert "DELETE" not in statements, statements
        assert len(await inventory.devices()) == 500


async def test_concurrent_overlapping_batches_end_consistent(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:

        def host(i: int, banner: str) -> agent_pb2.DeviceObservation:
            return device(f"10.2.0.{i}", port(22, banner), macs=[f"02:00:00:00:01:{i:02x}"])

        # Wave 1: six collectors' batches over overlapping IP ranges, all at once.
        wave1 = [
            inventory.commit(
                batch("run-1", k, [host(i, "SSH-2.0-v1") for i in range(k * 10 + 1, k * 10 + 31)]),
                instance_uid=f"collector-{k}",
            )
            for k in range(6)
        ]
        # Wave 2: newer runs report a new banner for the same overlapping ranges, all at once.
        wave2 = [
            inventory.commit(
                batch(f"run-2-{k}", 1, [host(i, "SSH-2.0-v2") for i in range(k * 10 + 1, k * 10 + 31)], later(1)),
                instance_uid=f"collector-{k}",
            )
            for k in range(6)
        ]
        # Two new runs see one new MAC at two IPs, concurrently: the later one moves the device.
        movers = [
            inventory.commit(batch(f"run-3-{k}", 1, [device(f"10.2.1.{k}", macs=[MAC_A])], later(2 + k)))
            for k in range(2)
        ]

        assert not any(r.duplicate for r in await asyncio.gather(*wave1))
        await asyncio.gather(*wave2)
        await asyncio.gather(*movers)

        listed = await inventory.devices()
        assert sorted(d.ip for d in listed if d.ip.startswith("10.2.0.")) == sorted(f"10.2.0.{i}" for i in range(1, 81))
        assert len([d for d in listed if MAC_A in d.mac_addresses]) == 1
        for shown in listed:
            history = await inventory.history(shown.ip)
            fields = [field for field, *_ in history]
            assert fields.count("created") == 1, history
            if shown.ip.startswith("10.2.0."):
                assert [p.banner for p in shown.ports] == ["SSH-2.0-v2"]
                assert fields == ["created", "port.22.banner"], history


async def test_the_same_batch_sent_twice_at_once_is_stored_once(database_url: str) -> None:
    async with running_inventory(database_url) as inventory:
        sent = batch("run-1", 1, [web(), device("10.0.0.6", port(22))])

        results = await asyncio.gather(*(inventory.commit(sent) for _ in range(4)))

        assert sorted(r.duplicate for r in results) == [False, True, True, True]
        assert await inventory.row_counts() == {
            "devices": 2,
            "device_ports": 3,
            "device_changes": 2,
            "ingested_batches": 1,
        }
