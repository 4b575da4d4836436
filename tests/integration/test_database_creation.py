"""A PostgreSQL database that does not exist yet: `ensure_database` creates it once; a
service that finds it missing stops with the command that creates it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from outpost.db_create import ensure_database, how_to_create, is_missing_database, open_failure
from tests.conftest import _drop_database, postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
async def missing_database() -> AsyncIterator[str]:
    name = f"outpost_missing_{uuid.uuid4().hex[:12]}"
    yield name
    await _drop_database(name)


async def test_ensure_database_creates_it_once(missing_database: str) -> None:
    url = postgres_url(missing_database)
    assert await ensure_database(url) is True
    assert await ensure_database(url) is False  # there now: nothing to do
    engine = create_async_engine(url)
    try:
        async with engine.connect():
            pass
    finally:
        await engine.dispose()


async def test_sqlite_and_an_existing_database_are_left_alone(tmp_path: Path) -> None:
    assert await ensure_database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}") is False
    assert await ensure_database(postgres_url("postgres")) is False


async def test_the_open_failure_of_a_missing_database_says_how_to_create_it(missing_database: str) -> None:
    url = postgres_url(missing_database)
    engine = create_async_engine(url)
    with pytest.raises(Exception) as failed:  # the driver's own class
        async with engine.connect():
            pass
    await engine.dispose()
    assert is_missing_database(failed.value)
    line = open_failure(url, failed.value)
    assert "\n" not in line
    assert f"createdb -h 127.0.0.1 -p 5432 -U postgres {missing_database}" in line
    assert f'CREATE DATABASE "{missing_database}"' in line


def test_how_to_create_quotes_what_a_shell_and_sql_would_misread() -> None:
    text = how_to_create('postgresql+asyncpg://ops@db.example:6432/odd"name x', as_superuser=True)
    assert "createdb -h db.example -p 6432 -U postgres -O ops 'odd\"name x'" in text
    assert 'CREATE DATABASE "odd""name x" OWNER "ops";' in text


def test_a_service_stops_with_the_command_that_creates_its_database(missing_database: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from services.scheduler.app import main; main()",
            "--database-url",
            postgres_url(missing_database),
            "--data-dir",
            str(tmp_path),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"createdb -h 127.0.0.1 -p 5432 -U postgres {missing_database}" in result.stderr + result.stdout
