"""Opening the registry's database: migrate, then make sure the server instance exists.

Several replicas may start at once against one PostgreSQL. Alembic does not guard
against two upgrades racing, and two replicas must not each mint a server instance id.
So start-up holds a session-level advisory lock while it migrates and reads (or
creates) the id; the second replica waits, then finds both done.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from outpost.db import create_engine, migrate, setup_lock
from services.registry.store.queries import RegistryStore

SCHEMA = "registry"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SETUP_LOCK_KEY = 0x6F75_7470_6F73_7402
"""pg_advisory_lock key held while a replica migrates ("outpost" + 2)."""


async def open_store(url: str, now: datetime) -> tuple[RegistryStore, str]:
    """Migrate `url` to head and return the store and this installation's server instance."""
    async with setup_lock(url, SCHEMA, SETUP_LOCK_KEY):
        await migrate(url, MIGRATIONS_DIR, schema=SCHEMA)
        store = RegistryStore(create_engine(url, SCHEMA))
        try:
            server_instance = await store.server_instance(now)
        except BaseException:
            await store.dispose()
            raise
    return store, server_instance
