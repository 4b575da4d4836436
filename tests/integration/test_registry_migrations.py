"""The registry's hand-written migrations create exactly the tables its models describe."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from outpost.db import create_engine, migrate
from services.registry.store.database import MIGRATIONS_DIR, SCHEMA
from services.registry.store.models import metadata


async def test_migrations_match_the_models_and_are_idempotent(database_url: str) -> None:
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)  # a restart migrates again

    def differences(connection: sa.Connection) -> list[Any]:
        opts = {"compare_type": True, "version_table": f"alembic_version_{SCHEMA}"}
        context = MigrationContext.configure(connection, opts=opts)
        return list(compare_metadata(context, metadata))

    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
            tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert diff == []
    assert {"server_instance", "collectors", "collector_events", "name_conflicts"} <= tables
