"""Security fixtures: one control plane of real processes per module and database.

Module-scoped (starting three services takes seconds, and the attacks in one module do
not disturb each other); parametrized over SQLite and a fresh PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

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
