"""The collector installs without the control plane's dependencies and still starts.

A fresh venv under the test's tmp dir gets exactly what `pip install '.[collector]'`
installs (tests/deploy/extras.py copies those distributions from this venv: offline, about
a second). In it every module of the collector imports, `outpost-collector --help` runs,
and the server-side packages are absent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.deploy.charts import ROOT
from tests.deploy.extras import closure, install_into

SERVER_ONLY = {"sqlalchemy", "asyncpg", "alembic", "grpcio-tools", "aiosqlite", "croniter", "typer"}
IMPORT_EVERY_COLLECTOR_MODULE = """
import importlib, pkgutil, sys
import services.collector as collector
for module in pkgutil.walk_packages(collector.__path__, "services.collector."):
    importlib.import_module(module.name)
for absent in ("sqlalchemy", "asyncpg", "alembic", "grpc_tools"):
    assert absent not in sys.modules, absent
from services.collector.app import main
main(["--help"])
"""


def test_collector_extra_installs_none_of_the_server_packages() -> None:
    collector = set(closure("collector"))
    assert not collector & SERVER_ONLY, collector & SERVER_ONLY
    assert {"pysnmp", "asyncssh", "icmplib", "dnspython", "grpcio", "noiseprotocol"} <= collector
    assert SERVER_ONLY - {"grpcio-tools"} <= set(closure("server", "cli")) | set(closure("cli"))


def test_collector_starts_in_a_venv_with_only_the_collector_extra(tmp_path: Path) -> None:
    python = install_into(tmp_path / "venv", closure("collector"))
    for absent in ("sqlalchemy", "asyncpg", "alembic", "grpc_tools"):
        found = subprocess.run([str(python), "-c", f"import {absent}"], capture_output=True, check=False)
        assert found.returncode != 0, f"{absent} is importable in the collector-only venv"
    result = subprocess.run(
        [str(python), "-c", IMPORT_EVERY_COLLECTOR_MODULE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": f"{ROOT / 'libs'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "usage: outpost-collector" in result.stdout
