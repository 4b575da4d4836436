"""Security tests: each guards one attack found on a real stack (issue 9).

They start whatever the attack needs: real processes (a control plane and a real
collector) where the attack is an operator-visible story, the registry in-process with a
`FakeCollector` where it is one crafted request, on SQLite and PostgreSQL alike.
`plane` is one control plane per module and database (the attacks of one module do not
disturb each other); `control_plane` is a fresh one per test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _create_database, _drop_database, postgres_url
from tests.process_harness import ControlPlane


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def plane(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    directory = tmp_path_factory.mktemp(f"security-{request.param}")
    name = ""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'outpost.db'}"
    else:
        name = f"outpost_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_create_database(name))
        url = postgres_url(name)
    control = ControlPlane(directory / "server", url).start()
    try:
        yield control
    finally:
        control.stop()
        if name:
            asyncio.run(_drop_database(name))


@pytest.fixture
def control_plane(tmp_path: Path, database_url: str) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path / "server", database_url).start()
    try:
        yield plane
    finally:
        plane.stop()
