"""database_unavailable: real failures from real drivers, classified as outage or not."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from outpost.db_failures import database_unavailable


async def raised_by(url: str, *statements: str) -> BaseException:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("the statements did not fail")


async def test_a_refused_postgresql_connection_is_an_outage() -> None:
    exc = await raised_by("postgresql+asyncpg://postgres@127.0.0.1:1/none", "SELECT 1")
    reason = database_unavailable(exc)
    assert reason is not None and reason.startswith("database unavailable:")


def sqlite_raised_by(url: str, *statements: str) -> BaseException:
    """SQLite through the stdlib driver: the same DBAPIError classes, no worker thread."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    except Exception as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the statements did not fail")


def test_a_missing_sqlite_file_is_an_outage(tmp_path: Path) -> None:
    exc = sqlite_raised_by(f"sqlite:///{tmp_path}/missing-dir/x.db", "SELECT 1")
    assert database_unavailable(exc) is not None


@pytest.mark.parametrize(
    "statements",
    [
        ("CREATE TABLE t (id INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"),
        ("CREATE TABLE t (id INTEGER NOT NULL)", "INSERT INTO t VALUES (NULL)"),
    ],
    ids=["duplicate-key", "not-null"],
)
def test_integrity_errors_are_not_outages(tmp_path: Path, statements: tuple[str, ...]) -> None:
    exc = sqlite_raised_by(f"sqlite:///{tmp_path}/x.db", *statements)
    assert database_unavailable(exc) is None


def test_a_bug_is_not_an_outage() -> None:
    assert database_unavailable(KeyError("collector")) is None
