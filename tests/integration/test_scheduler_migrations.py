"""The scheduler's hand-written migrations create exactly the tables its models describe."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from outpost.db import create_engine, migrate
from services.scheduler.store.database import MIGRATIONS_DIR, SCHEMA
from services.scheduler.store.models import metadata


async def test_migrations_match_the_models_and_are_idempotent(database_url: str) -> None:
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)  # a restart migrates again

    def differences(connection: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _not_alembic_bookkeeping}
        )
        return list(compare_metadata(context, metadata))

    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
            tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
            first_event = (await conn.execute(sa.text("SELECT revision, kind FROM dispatch_events"))).all()
    finally:
        await engine.dispose()
    assert diff == []
    assert {"discoveries", "schedules", "job_runs", "dispatch_events", "settings"} <= tables
    assert [tuple(row) for row in first_event] == [(1, "settings")]


def _not_alembic_bookkeeping(name: str | None, kind: str, _parents: Any) -> bool:
    """Alembic's version table (named per service by `outpost.db`) is not one of ours."""
    return not (kind == "table" and (name or "").startswith("alembic_version"))
