"""Opening the scheduler's database: migrate under a lock, then hand out the store.

Several replicas may start at once against one PostgreSQL, and Alembic does not guard
against two upgrades racing; start-up holds a session-level advisory lock while it
migrates, so the second replica waits and then finds the work done.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa

from outpost.db import create_engine, is_sqlite, migrate
from services.scheduler.store.queries import SchedulerStore

SCHEMA = "scheduler"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SETUP_LOCK_KEY = 0x6F75_7470_6F73_7412
"""pg_advisory_lock key held while a replica migrates ("outpost" + 0x12)."""


async def open_store(url: str) -> SchedulerStore:
    """Migrate `url` to head and return the store over it."""
    async with _setup_lock(url):
        await migrate(url, MIGRATIONS_DIR, schema=SCHEMA)
    return SchedulerStore(create_engine(url, SCHEMA, sqlite_pool=True))


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
