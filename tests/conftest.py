"""Fixtures every test layer shares: databases (SQLite and PostgreSQL) and free ports.

`database_url` is parametrized: each test that asks for it runs once on a fresh SQLite
file and once on a fresh PostgreSQL database (127.0.0.1:5432, trust auth), created for
that test and dropped after it. Set OUTPOST_TEST_POSTGRES_DSN to point elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

POSTGRES_DSN = os.environ.get("OUTPOST_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _create_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def postgres_url(name: str) -> str:
    base = POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@contextlib.asynccontextmanager
async def fresh_postgres_database(prefix: str = "outpost_test") -> AsyncIterator[str]:
    """A new, empty PostgreSQL database's URL, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await _create_database(name)
    try:
        yield postgres_url(name)
    finally:
        await _drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database URL: SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'outpost.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def postgres_database_url() -> AsyncIterator[str]:
    """For tests about PostgreSQL itself (replicas, LISTEN, the charts' and units' boot)."""
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    path.mkdir()
    yield path


@pytest.fixture(autouse=True, scope="session")
def outpostctl_config_outside_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`outpost-run` writes, and outpostctl reads, a per-user config file; tests never touch
    the real user's: every process they start inherits this one instead."""
    previous = os.environ.get("OUTPOST_CONFIG")
    os.environ["OUTPOST_CONFIG"] = str(tmp_path_factory.mktemp("outpostctl") / "config.json")
    yield
    if previous is None:
        os.environ.pop("OUTPOST_CONFIG", None)
    else:
        os.environ["OUTPOST_CONFIG"] = previous
