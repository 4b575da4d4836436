"""Database engines and migrations for every service that owns tables.

Each service owns its tables and its own Alembic history (`services/<svc>/migrations/`).
On SQLite (the embedded default) a service keeps one file under the data directory; on
PostgreSQL it keeps its own schema, selected with `search_path`, so no service can read
another's tables by accident and all share one database server.

Migrations run at start-up from a worker thread: Alembic's async env uses its own event
loop, and running it in a thread keeps the service's loop free.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 10_000


def default_sqlite_url(data_dir: Path, service: str) -> str:
    return f"sqlite+aiosqlite:///{data_dir.resolve() / f'{service}.db'}"


def redact(url: str) -> str:
    """The URL without its password, fit for logs and `server info`."""
    return make_url(url).render_as_string(hide_password=True)


def redact_unparsable(url: str) -> str:
    """An unparsable URL may still hold a password after '//user:'; show only its scheme."""
    return url.split("://", 1)[0] + "://..." if "://" in url else "(not a URL)"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, schema: str, *, pool_size: int = 10, sqlite_pool: bool = False) -> AsyncEngine:
    """An async engine bound to `schema` (PostgreSQL) or to its own file (SQLite).

    On SQLite each transaction opens a new connection (a thread, a `sqlite3.connect`, four
    PRAGMAs: ~3 ms of CPU) unless `sqlite_pool`, which keeps up to `pool_size` connections
    open (~0.8 ms per transaction; the scheduler's dispatch path, ADR 0033). Pooled
    connections stay in WAL mode and return to the pool rolled back.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = (
            create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
            if sqlite_pool
            else create_async_engine(url, poolclass=NullPool)
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            raise SystemExit(f"use postgresql+asyncpg:// URLs, not {parsed.drivername}://")
        return create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args={
                "server_settings": {
                    "search_path": schema,
                    "application_name": f"outpost-{schema}",
                    # Statements are prepared and reused; after five runs PostgreSQL may
                    # switch to a generic plan that ignores the actual IN-list and zone,
                    # which made the inventory's device lookup scan the zone per batch
                    # (29 ms instead of 3 ms at 13k devices). Planning each run costs
                    # far less than that.
                    "plan_cache_mode": "force_custom_plan",
                },
            },
        )
    raise SystemExit(f"unsupported database {backend!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ensure_schema(engine: AsyncEngine, schema: str) -> None:
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


async def migrate(url: str, migrations_dir: Path, schema: str) -> None:
    """Bring this service's tables to the newest revision (idempotent, safe on every start)."""
    engine = create_engine(url, schema)
    try:
        await ensure_schema(engine, schema)
    finally:
        await engine.dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["database_url"] = url
    cfg.attributes["schema"] = schema
    await asyncio.to_thread(command.upgrade, cfg, "head")


@contextlib.asynccontextmanager
async def setup_lock(url: str, schema: str, key: int) -> AsyncIterator[None]:
    """Hold PostgreSQL's session-level advisory lock `key` while a replica sets up its tables.

    Several replicas may start at once against one PostgreSQL, and Alembic does not guard
    against two upgrades racing: whoever holds the lock migrates (and does its other
    one-time setup), the next waits and then finds the work done. Each service has its own
    `key`. SQLite needs none: its file belongs to one process.
    """
    if is_sqlite(url):
        yield
        return
    engine = create_engine(url, schema, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                await conn.commit()
    finally:
        await engine.dispose()


def run_alembic_env(target_metadata: sa.MetaData) -> None:
    """Body of every service's `migrations/env.py`: online migrations on the async engine."""
    from alembic import context

    cfg = context.config
    url: str = cfg.attributes["database_url"]
    schema: str = cfg.attributes["schema"]

    def do_run(connection: sa.Connection) -> None:
        # One version table per service: on a shared SQLite file (or a shared schema) the
        # services' histories must not see each other's revisions.
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            version_table=f"alembic_version_{schema}",
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_engine(url, schema)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(do_run)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())
