"""Opening the registry's database: migrate, then make sure the server instance exists.

Several replicas may start at once against one PostgreSQL. Alembic does not guard
against two upgrades racing, and two replicas must not each mint a server instance id.
So start-up holds a session-level advisory lock while it migrates and reads (or
creates) the id; the second replica waits, then finds both done.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from outpost.db import create_engine, is_sqlite, migrate
from services.registry.store.queries import RegistryStore

SCHEMA = "registry"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SETUP_LOCK_KEY = 0x6F75_7470_6F73_7402
"""pg_advisory_lock key held while a replica migrates ("outpost" + 2)."""


async def open_store(url: str, now: datetime) -> tuple[RegistryStore, str]:
    """Migrate `url` to head and return the store and this installation's server instance."""
    async with _setup_lock(url):
        await migrate(url, MIGRATIONS_DIR, schema=SCHEMA)
        store = RegistryStore(create_engine(url, SCHEMA))
        try:
            server_instance = await store.server_instance(now)
        except BaseException:
            await store.dispose()
            raise
    return store, server_instance


@contextlib.asynccontextmanager
async def _setup_lock(url: str) -> AsyncIterator[None]:
    if is_sqlite(url):
        yield
        return
    engine = create_engine(url, SCHEMA, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.select(sa.func.pg_advisory_lock(SETUP_LOCK_KEY)))
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(sa.select(sa.func.pg_advisory_unlock(SETUP_LOCK_KEY)))
                await conn.commit()
    finally:
        await engine.dispose()
