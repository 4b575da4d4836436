"""`outpost-<service> migrate` (the chart's hook Job) and `--require-secret-key` (its registry).

Real processes: the services' console scripts against a PostgreSQL database of the test.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import POSTGRES_DSN, _create_database, _drop_database, postgres_url
from tests.process_harness import BIN

SERVICES = ("registry", "scheduler", "gateway")


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name = f"outpost_migrate_{uuid.uuid4().hex[:12]}"
    await _create_database(name)
    try:
        yield postgres_url(name)
    finally:
        await _drop_database(name)


def migrate(service: str, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / f"outpost-{service}"), "migrate", "--database-url", url, "--log-format", "console"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.postgres
async def test_migrations_started_together_all_succeed_and_a_second_run_changes_nothing(database: str) -> None:
    # Two of each at once: what a hook Job and replicas starting together do to one database.
    processes = [migrate(service, database) for service in SERVICES for _ in range(2)]
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
        assert "database_migrated" in output
    conn = await asyncpg.connect(POSTGRES_DSN.rsplit("/", 1)[0] + "/" + database.rsplit("/", 1)[1])
    try:
        versions = {
            schema: await conn.fetchval(f'SELECT version_num FROM "{schema}".alembic_version_{schema}')
            for schema in SERVICES
        }
        instances = await conn.fetchval("SELECT count(*) FROM registry.server_instance")
    finally:
        await conn.close()
    assert all(versions.values()), versions
    assert instances == 1  # two registries migrating together minted one server instance
    again = migrate("registry", database)
    output, _ = again.communicate(timeout=60)
    assert again.returncode == 0, output


def test_migrate_names_a_database_it_cannot_reach_without_its_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://outpost:hunter2secret@127.0.0.1:1/outpost"
    result = subprocess.run(
        [str(BIN / "outpost-scheduler"), "migrate", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "outpost-scheduler migrate: cannot migrate postgresql+asyncpg://outpost:***@127.0.0.1:1/outpost" in (
        result.stderr
    )
    assert "hunter2secret" not in result.stderr + result.stdout


def test_a_registry_told_the_secret_key_must_exist_refuses_to_create_one(tmp_path: Path) -> None:
    key = tmp_path / "mounted" / "registry-secret.key"
    result = subprocess.run(
        [
            str(BIN / "outpost-registry"),
            "--data-dir",
            str(tmp_path / "data"),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "",
            "--secret-key-file",
            str(key),
            "--require-secret-key",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"secret key file {key} does not exist and --require-secret-key is set" in result.stderr
    assert not key.exists()
