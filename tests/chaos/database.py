"""The test's own PostgreSQL database: create, drop, watch ingest, and break connections to it.

The PostgreSQL server is shared, so nothing here stops or reconfigures it. A "restart"
is emulated on this database only: `kill_connections()` terminates the backends of this
database (optionally only those of one service, by the `application_name` the services
set: `outpost-gateway`, `outpost-registry`, `outpost-scheduler`), and `down()` also
refuses new connections to it (`ALLOW_CONNECTIONS false`) until the block ends, which is
what a service sees while the server restarts.

Progress is read straight from the gateway's tables (`docs/inventory.md`: schema
`gateway`, tables `devices` and `ingested_batches`): a cheap poll to decide *when* to
strike. The oracle itself reads the inventory the way an operator does (`oracle.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from tests.conftest import POSTGRES_DSN, postgres_url

T = TypeVar("T")
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class ChaosDatabase:
    name: str

    @property
    def url(self) -> str:
        """What the services are given (`--database-url`)."""
        return postgres_url(self.name)

    @property
    def dsn(self) -> str:
        return f"{POSTGRES_DSN.rsplit('/', 1)[0]}/{self.name}"

    @classmethod
    def create(cls) -> ChaosDatabase:
        database = cls(f"outpost_chaos_{uuid.uuid4().hex[:12]}")
        _run(_admin(f'CREATE DATABASE "{database.name}"'))
        return database

    def drop(self) -> None:
        _run(_admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))
        _run(_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    def device_count(self) -> int:
        """Devices committed to the inventory (0 before the gateway created its tables)."""
        return self._count("SELECT count(*) FROM gateway.devices")

    def batch_count(self) -> int:
        """Result batches committed (each identity once)."""
        return self._count("SELECT count(*) FROM gateway.ingested_batches")

    def kill_connections(self, application: str | None = None) -> int:
        """pg_terminate_backend every connection to this database (or one service's); how many."""
        query = (
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid() AND ($2::text IS NULL OR application_name = $2)"
        )
        return int(_run(_admin_value(query, self.name, application)))

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The database is unavailable inside the block: connections killed, new ones refused."""
        _run(_admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
        try:
            self.kill_connections()
            yield
        finally:
            _run(_admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))

    def _count(self, query: str) -> int:
        async def count() -> int:
            conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT)
            try:
                return int(await conn.fetchval(query))
            except asyncpg.UndefinedTableError:
                return 0
            finally:
                await conn.close()

        return _run(count())


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN, timeout=CONNECT_TIMEOUT)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _admin_value(query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(POSTGRES_DSN, timeout=CONNECT_TIMEOUT)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one asyncpg call from a synchronous test (tests here have no running loop)."""
    return asyncio.run(coro)
