"""The gateway's hand-written migrations create exactly the tables the inventory's models describe."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from outpost.db import create_engine, migrate
from services.gateway.inventory.store.database import MIGRATIONS_DIR, SCHEMA, open_inventory
from services.gateway.inventory.store.models import metadata

POSTGRES_ONLY_INDEXES = {"ix_devices_mac_addresses"}
"""The GIN index behind the MAC lookup exists only on PostgreSQL, so the models leave it out."""


async def test_migrations_match_the_models_and_are_idempotent(database_url: str) -> None:
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)  # a restart migrates again

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and (name or "").startswith("alembic_version"):
            return False  # Alembic's own bookkeeping, whatever the version table is called
        return not (type_ == "index" and name in POSTGRES_ONLY_INDEXES)

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
    assert {"devices", "device_ports", "device_changes", "ingested_batches"} <= tables
    assert ("ix_devices_mac_addresses" in device_indexes) is database_url.startswith("postgresql")


async def test_replicas_opening_the_inventory_at_once_migrate_it_once(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share PostgreSQL; an SQLite file belongs to one gateway process")
    stores = await asyncio.gather(*(open_inventory(database_url) for _ in range(3)))
    try:
        assert [await store.list_devices() for store in stores] == [[], [], []]
    finally:
        for store in stores:
            await store.close()
