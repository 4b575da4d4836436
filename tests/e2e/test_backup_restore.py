"""Backup and restore as docs/deploy.md tells an operator to do it, on the real processes.

PostgreSQL only (that is what a production install runs on). A control plane with an
enabled collector and a stored SNMP credential is stopped; its database is dumped with
`pg_dump -Fc`, dropped, re-created empty and restored with `pg_restore`; then the
services start again with the same registry secret key (`registry-secret.key`). The
collector, which kept running, reconnects on its own and is still enabled, and a
discovery using the credential succeeds against a real snmpd that answers only to that
community: the credential still unseals. Started with another secret key instead, the
registry says which key the data needs, and the gateway never becomes ready: it logs
that the server key was encrypted under another secret key and names the fix (and
gives up after its registry wait), rather than anything running on garbage.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import _create_database, _drop_database, postgres_url
from tests.e2e.test_discovery_flow import enabled_collector
from tests.peers.snmpd import start_snmpd
from tests.process_harness import Collector, ControlPlane, Replica, wait_for

pytestmark = pytest.mark.postgres

AGENT_HOST = "127.0.0.32"


@pytest.fixture
def database() -> Iterator[str]:
    name = f"outpost_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(name))
    try:
        yield name
    finally:
        asyncio.run(_drop_database(name))


def pg(tool: str, database: str, *args: str) -> None:
    url = make_url(postgres_url(database))
    command = [tool, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    subprocess.run([*command, *args], check=True, capture_output=True, timeout=120)


def start_again(plane: ControlPlane) -> None:
    """The registry, the schedulers and the gateways on the addresses they had (collectors dial those)."""
    plane.restart_registry()
    for replica in [*plane.schedulers, *plane.gateways]:
        replica.restart()


def run_discovery(plane: ControlPlane) -> dict[str, object]:
    summary: dict[str, object] = json.loads(plane.ctl("discoveries", "run", "snmp-lab", "--wait", "--json").stdout)
    return summary


def test_a_restored_database_with_its_secret_key_brings_everything_back(database: str, tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "server", postgres_url(database)).start()
    agent = start_snmpd(tmp_path / "snmpd", AGENT_HOST, sys_name="restored-switch")
    collector: Collector | None = None
    try:
        collector = enabled_collector(plane, tmp_path, "edge-restore", transport="tcp")
        community = tmp_path / "community"
        community.write_text(agent.community + "\n")
        plane.ctl("credentials", "add", "lab-snmp", "--type", "snmp-v2c", "--community-file", str(community))
        plane.ctl(
            "discoveries", "create", "snmp-lab", "--targets", AGENT_HOST, "--ports", "1", "--probes", "snmp",
            "--snmp-credential", "lab-snmp", "--snmp-port", str(agent.port), "--collector", "edge-restore",
        )  # fmt: skip
        before = collector.status()["session_id"]

        # Backup: stop, dump. Disaster: the database is gone. Restore: an empty one, pg_restore.
        plane.stop()
        dump = tmp_path / "outpost.dump"
        pg("pg_dump", database, "-Fc", "-f", str(dump), database)
        asyncio.run(_drop_database(database))
        asyncio.run(_create_database(database))
        pg("pg_restore", database, "--exit-on-error", "-d", database, str(dump))
        start_again(plane)

        back = collector.wait_status(
            lambda s: s.get("state") == "enabled" and s.get("session_id") not in ("", before),
            "enabled again on a new session",
        )
        assert back["server_instance"]
        summary = run_discovery(plane)
        assert summary["state"] == "succeeded", summary
        device = json.loads(plane.ctl("devices", "show", AGENT_HOST, "--json").stdout)
        assert device["facts"]["snmp.sys_name"] == "restored-switch"  # the credential unsealed

        # The same data under another secret key: a clear refusal, not garbage.
        plane.stop()
        key_file = plane.workdir / "registry-secret.key"
        original = key_file.read_bytes()
        key_file.write_bytes(os.urandom(len(original)))
        plane.restart_registry()
        assert plane.registry is not None
        events = {e.get("event"): e for e in plane.registry.log_events()}
        assert "server_key_undecryptable" in events, list(events)
        assert "--secret-key-file" in events["server_key_undecryptable"]["advice"]
        assert events["credentials_under_other_secret_key"]["credentials"] == 1
        for scheduler in plane.schedulers:
            scheduler.restart()
        gateway: Replica = plane.gateways[0]
        gateway.launch()  # it must not become ready: it cannot prove the server's key

        def refused() -> dict[str, Any] | None:
            return next(
                (e for e in gateway.log_events() if "original --secret-key-file" in str(e.get("error", ""))), None
            )

        said = wait_for(refused, 30, what="the gateway to name the secret key problem")
        assert said["event"] == "watch_resync_failed" and said["watch"] == "access-keys"
        assert not gateway.ready_file.exists()
    finally:
        if collector is not None:
            collector.stop()
        agent.stop()
        plane.stop()
