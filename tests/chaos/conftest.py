"""Chaos fixtures: a fresh PostgreSQL database per test and a `Lab` that stops what it started.

The chaos tests run on PostgreSQL only: several gateways and schedulers share one
database, and "the database went away" is emulated on that database alone
(`database.py`). When a test fails, the end of every process log is printed.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.chaos.database import ChaosDatabase
from tests.chaos.lab import Lab


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def chaos_database() -> Iterator[ChaosDatabase]:
    database = ChaosDatabase.create()
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path, chaos_database: ChaosDatabase) -> Iterator[Lab]:
    lab = Lab(tmp_path, chaos_database)
    try:
        yield lab
    finally:
        lab.close()
        if request.node.stash.get(_FAILED, False):
            print(f"process logs under {tmp_path}\n{lab.log_tails()}")
