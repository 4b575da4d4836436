"""The gateway's hand-written migrations create exactly the tables the inventory's models describe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from outpost.db import create_engine, ensure_schema, migrate
from services.gateway.inventory.store.commit import commit_batch
from services.gateway.inventory.store.database import MIGRATIONS_DIR, SCHEMA, open_inventory
from services.gateway.inventory.store.models import device_changes, device_macs, devices, metadata
from services.gateway.inventory.store.queries import ip_sort_key

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def test_migrations_match_the_models_and_are_idempotent(database_url: str) -> None:
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)  # a restart migrates again

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        # Alembic's own bookkeeping, whatever the version table is called, is not a model.
        return not (type_ == "table" and (name or "").startswith("alembic_version"))

    def differences(connection: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
        return list(compare_metadata(context, metadata))

    def indexes(connection: sa.Connection) -> set[str]:
        return {i["name"] for i in sa.inspect(connection).get_indexes("devices") if i["name"]}

    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
            tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
            device_indexes = await conn.run_sync(indexes)
    finally:
        await engine.dispose()
    assert diff == []
    assert {"devices", "device_macs", "device_ports", "device_changes", "ingested_batches"} <= tables
    assert "ix_devices_mac_addresses" not in device_indexes  # the GIN index had no reader left (0008)


async def test_replicas_opening_the_inventory_at_once_migrate_it_once(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share PostgreSQL; an SQLite file belongs to one gateway process")
    stores = await asyncio.gather(*(open_inventory(database_url) for _ in range(3)))
    try:
        assert [await store.list_devices() for store in stores] == [([], "")] * 3
    finally:
        for store in stores:
            await store.close()


async def test_batches_committed_before_attempts_keep_attempt_0_and_still_dedupe(database_url: str) -> None:
    await _migrate_to(database_url, "0001")
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO ingested_batches (collector_instance_uid, job_run_id, sequence, committed_at, devices)"
                    " VALUES ('uid-1', 'run-1', 1, :at, 0)"
                ),
                {"at": T0.replace(tzinfo=None) if database_url.startswith("sqlite") else T0},
            )
    finally:
        await engine.dispose()

    store = await open_inventory(database_url)  # migrates to head
    try:

        async def commit(attempt: int) -> bool:
            result = await commit_batch(
                store,
                collector_instance_uid="uid-1",
                collector_name="edge-1",
                zone="",
                job_run_id="run-1",
                attempt=attempt,
                sequence=1,
                scanned_ports=(),
                observations=[],
                observed_at=T0,
            )
            return result.duplicate

        assert await commit(0)  # an old collector resending an old batch: already stored
        assert not await commit(1)  # the same numbers in a run's first attempt: a batch of its own
    finally:
        await store.close()

    # Back to 0001: two attempts of one (run, sequence) cannot both stay; the first does.
    await _migrate_to(database_url, "0001", downgrade=True)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    store = await open_inventory(database_url)
    try:
        async with store.read() as conn:
            rows = (await conn.execute(sa.text("SELECT attempt, sequence FROM ingested_batches"))).all()
        assert [tuple(row) for row in rows] == [(0, 1)]
    finally:
        await store.close()


async def test_devices_stored_before_the_lifecycle_are_active_with_their_history_in_pages(database_url: str) -> None:
    await _migrate_to(database_url, "0002")
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.begin() as conn:  # the columns 0002 has, written as the store wrote them
            await conn.execute(
                sa.insert(devices).values(
                    id="d1",
                    zone="dmz",
                    ip="10.0.0.5",
                    ip_sort=ip_sort_key("10.0.0.5"),
                    hostname="old",
                    mac_addresses=[],
                    snmp_engine_id="",
                    facts={},
                    first_seen=T0,
                    last_seen=T0,
                    last_collector="edge-1",
                    last_job_run_id="run-1",
                )
            )
            await conn.execute(
                sa.insert(device_changes),
                [
                    {"device_id": "d1", "field": f, "old_value": "", "new_value": v, "changed_at": T0, "job_run_id": r}
                    for f, v, r in (("created", "10.0.0.5", "run-1"), ("hostname", "old", "run-2"))
                ],
            )
    finally:
        await engine.dispose()

    store = await open_inventory(database_url)  # migrates to head
    try:
        device, history, token = await store.get_device("10.0.0.5", history_page_size=1)
        assert (device.retired_at, device.retired_reason, device.missed_runs) == (None, "", 0)
        assert ([c.field for c in history], bool(token)) == (["hostname"], True)
        older, last = await store.list_device_history("10.0.0.5", page_token=token)
        assert ([c.field for c in older], last) == (["created"], "")
        assert [d.ip for d in (await store.list_devices())[0]] == ["10.0.0.5"]
    finally:
        await store.close()

    await _migrate_to(database_url, "0002", downgrade=True)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)


async def _migrate_to(url: str, revision: str, *, downgrade: bool = False) -> None:
    engine = create_engine(url, SCHEMA)
    try:
        await ensure_schema(engine, SCHEMA)
    finally:
        await engine.dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = url
    cfg.attributes["schema"] = SCHEMA
    await asyncio.to_thread(command.downgrade if downgrade else command.upgrade, cfg, revision)


async def test_ports_stored_before_states_become_open_or_closed_and_read_as_such(database_url: str) -> None:
    await _migrate_to(database_url, "0002")
    sqlite = database_url.startswith("sqlite")
    at = T0.replace(tzinfo=None) if sqlite else T0
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO devices (id, zone, ip, ip_sort, hostname, mac_addresses, snmp_engine_id, facts,"
                    " first_seen, last_seen, last_collector, last_job_run_id)"
                    " VALUES ('dev-1', 'lab', '10.0.0.5', 'x', 'web', '[]', '', '{}', :at, :at, 'edge-1', 'run-1')"
                ),
                {"at": at},
            )
            for number, is_open in ((22, True), (80, False)):
                await conn.execute(
                    sa.text(
                        "INSERT INTO device_ports (device_id, protocol, port, service, banner, details,"
                        ' first_seen, last_seen, "open")'
                        " VALUES ('dev-1', 'tcp', :port, '', '', '{}', :at, :at, :open)"
                    ),
                    {"port": number, "at": at, "open": is_open},
                )
    finally:
        await engine.dispose()

    store = await open_inventory(database_url)  # migrates to head
    try:
        device, _, _ = await store.get_device("10.0.0.5")
        assert [(p.port, p.state) for p in device.known_ports()] == [(22, "open"), (80, "closed")]
    finally:
        await store.close()

    await _migrate_to(database_url, "0002", downgrade=True)
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text('SELECT port, "open" FROM device_ports ORDER BY port'))).all()
    finally:
        await engine.dispose()
    assert [(row[0], bool(row[1])) for row in rows] == [(22, True), (80, False)]


async def test_upgrading_from_0005_keeps_batches_with_nothing_stale_and_no_notes(database_url: str) -> None:
    await _migrate_to(database_url, "0005")
    at = T0.replace(tzinfo=None) if database_url.startswith("sqlite") else T0
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO ingested_batches (collector_instance_uid, job_run_id, attempt, sequence,"
                    " committed_at, devices) VALUES ('uid-1', 'run-1', 1, 1, :at, 1)"
                ),
                {"at": at},
            )
    finally:
        await engine.dispose()

    store = await open_inventory(database_url)  # migrates to head
    try:
        async with store.read() as conn:
            rows = (await conn.execute(sa.text("SELECT job_run_id, stale_observations FROM ingested_batches"))).all()
            notes = (await conn.execute(sa.text("SELECT count(*) FROM device_notes"))).scalar_one()
        assert ([tuple(row) for row in rows], notes) == ([("run-1", 0)], 0)
    finally:
        await store.close()

    await _migrate_to(database_url, "0005", downgrade=True)  # and back: the table, column and index go
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)


async def test_upgrading_from_0006_fills_device_macs_from_the_devices_macs(database_url: str) -> None:
    await _migrate_to(database_url, "0006")
    engine = create_engine(database_url, SCHEMA)
    row = {
        "hostname": "",
        "snmp_engine_id": "",
        "facts": {},
        "first_seen": T0,
        "last_seen": T0,
        "last_collector": "edge-1",
        "last_job_run_id": "run-1",
    }
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(devices),
                [
                    {**row, "id": i, "ip": ip, "ip_sort": ip_sort_key(ip), "zone": zone, "mac_addresses": macs}
                    for i, ip, zone, macs in (
                        ("d1", "10.0.0.5", "dmz", ["aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02"]),
                        ("d2", "10.0.0.6", "dmz", []),
                        ("d3", "10.0.0.7", "lab", ["aa:bb:cc:00:00:01"]),
                    )
                ],
            )
        await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(device_macs))).all()
    finally:
        await engine.dispose()
    assert sorted(tuple(r) for r in rows) == [
        ("dmz", "aa:bb:cc:00:00:01", "d1"),
        ("dmz", "aa:bb:cc:00:00:02", "d1"),
        ("lab", "aa:bb:cc:00:00:01", "d3"),
    ]
    await _migrate_to(database_url, "0006", downgrade=True)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
