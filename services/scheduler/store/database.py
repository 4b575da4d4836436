"""Opening the scheduler's database: migrate under a lock, then hand out the store.

Several replicas may start at once against one PostgreSQL, and Alembic does not guard
against two upgrades racing; start-up holds a session-level advisory lock while it
migrates, so the second replica waits and then finds the work done.
"""

from __future__ import annotations

from pathlib import Path

from outpost.db import create_engine, migrate, setup_lock
from services.scheduler.store.queries import SchedulerStore

SCHEMA = "scheduler"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SETUP_LOCK_KEY = 0x6F75_7470_6F73_7412
"""pg_advisory_lock key held while a replica migrates ("outpost" + 0x12)."""


async def open_store(url: str) -> SchedulerStore:
    """Migrate `url` to head and return the store over it."""
    async with setup_lock(url, SCHEMA, SETUP_LOCK_KEY):
        await migrate(url, MIGRATIONS_DIR, schema=SCHEMA)
    return SchedulerStore(create_engine(url, SCHEMA, sqlite_pool=True))
