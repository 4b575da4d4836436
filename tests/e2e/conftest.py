"""End-to-end fixtures: a control plane of real processes on the `database_url` database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.process_harness import ControlPlane


@pytest.fixture
def control_plane(tmp_path: Path, database_url: str) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path / "server", database_url).start()
    try:
        yield plane
    finally:
        plane.stop()
