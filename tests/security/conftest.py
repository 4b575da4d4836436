"""Security tests: each guards one attack found on a real stack (issue 9).

They start whatever the attack needs: real processes (a control plane and a real
collector) where the attack is an operator-visible story, the registry in-process with a
`FakeCollector` where it is one crafted request, on SQLite and PostgreSQL alike.
"""

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
