"""Opening the inventory's database: migrate the gateway's tables, then hand back the store.

Several gateway replicas may start at once against one PostgreSQL, and Alembic does not
guard against two upgrades racing; so start-up holds a session-level advisory lock while
it migrates, and the second replica waits, then finds the tables at head.
"""

from __future__ import annotations

from pathlib import Path

from outpost.db import create_engine, migrate, setup_lock
from services.gateway.inventory.store.queries import InventoryStore

SCHEMA = "gateway"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
SETUP_LOCK_KEY = 0x6F75_7470_6F73_7410
"""pg_advisory_lock key held while a gateway replica migrates ("outpost" + 0x10)."""


async def open_inventory(database_url: str) -> InventoryStore:
    """Migrate `database_url` to head and return the store; call `close()` when done."""
    async with setup_lock(database_url, SCHEMA, SETUP_LOCK_KEY):
        await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    return InventoryStore(create_engine(database_url, SCHEMA))
