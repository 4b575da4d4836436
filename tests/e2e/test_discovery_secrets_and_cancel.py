"""Credentials stay secret end to end, and cancelling a run stops the collector's scan.

The canary is the SNMP community of a real snmpd: the discovery must use it (the agent
answers only to it), and afterwards it must appear in no log line of any process and in
no database (SQLite files byte for byte; PostgreSQL via pg_dump).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from outpost.sealing import HPKE_ALGORITHM, LEGACY_ALGORITHM
from tests.e2e.test_discovery_flow import enabled_collector
from tests.peers.snmpd import start_snmpd
from tests.peers.tcp import TcpListeners
from tests.process_harness import ControlPlane, wait_for


def _everything_written(plane: ControlPlane, tmp_path: Path) -> bytes:
    """Every file the processes wrote (logs, SQLite databases, collector data) plus a
    PostgreSQL dump when the control plane runs there."""
    blobs = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "snmpd" not in p.parts]
    if plane.database_url.startswith("postgresql"):
        url = make_url(plane.database_url)
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                url.host or "127.0.0.1",
                "-p",
                str(url.port or 5432),
                "-U",
                url.username or "postgres",
                "--data-only",
                url.database or "",
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        assert b"COPY registry.credentials" in dump.stdout
        blobs.append(dump.stdout)
    return b"\n".join(blobs)


@pytest.mark.parametrize(
    ("collector_args", "algorithm"),
    [([], HPKE_ALGORITHM), (["--legacy-sealing"], LEGACY_ALGORITHM)],
    ids=["hpke", "collector-without-hpke"],
)
def test_snmp_community_is_used_but_never_logged_or_stored_in_clear(
    control_plane: ControlPlane, tmp_path: Path, collector_args: list[str], algorithm: str
) -> None:
    """Also ADR 0020: a current collector gets HPKE; one whose hello lists no sealing algorithms
    (as collectors before HPKE) gets the legacy algorithm, and its discovery runs all the same."""
    agent = start_snmpd(tmp_path / "snmpd", "127.0.0.31", sys_name="canary-switch")
    collector = enabled_collector(control_plane, tmp_path, "edge-secret", extra_args=collector_args)
    try:
        community_file = tmp_path / "snmpd" / "community"
        community_file.write_text(agent.community + "\n")
        control_plane.ctl(
            "credentials", "add", "lab-snmp", "--type", "snmp-v2c", "--community-file", str(community_file)
        )
        listed = control_plane.ctl("credentials", "list", "--json").stdout
        assert agent.community not in listed
        control_plane.ctl(
            "discoveries",
            "create",
            "snmp-lab",
            "--targets",
            "127.0.0.31",
            "--ports",
            "1",
            "--probes",
            "snmp",
            "--snmp-credential",
            "lab-snmp",
            "--snmp-port",
            str(agent.port),
            "--collector",
            "edge-secret",
        )
        summary = json.loads(control_plane.ctl("discoveries", "run", "snmp-lab", "--wait", "--json").stdout)
        assert summary["state"] == "succeeded", summary
        device = json.loads(control_plane.ctl("devices", "show", "127.0.0.31", "--json").stdout)
        assert device["facts"]["snmp.sys_name"] == "canary-switch"  # the community really was used
        assert control_plane.registry is not None
        sealed = [e for e in control_plane.registry.log_events() if e.get("event") == "credentials_sealed"]
        assert sealed and {e["algorithm"] for e in sealed} == {algorithm}, sealed
    finally:
        collector.stop()
        agent.stop()
    control_plane.stop()
    written = _everything_written(control_plane, tmp_path)
    assert agent.community.encode() not in written


def test_cancelling_a_run_reaches_the_collector_and_stops_the_scan(control_plane: ControlPlane, tmp_path: Path) -> None:
    listeners = TcpListeners()
    ports = [listeners.filtered("127.0.0.32") for _ in range(4)]
    collector = enabled_collector(control_plane, tmp_path, "edge-cancel")
    try:
        control_plane.ctl(
            "discoveries",
            "create",
            "slow",
            "--targets",
            "127.0.0.32",
            "--ports",
            ",".join(map(str, ports)),
            "--probes",
            "tcp",
            "--concurrency",
            "1",
            "--timeout-ms",
            "60000",
            "--collector",
            "edge-cancel",
        )
        run = json.loads(control_plane.ctl("discoveries", "run", "slow", "--json").stdout)

        def state() -> str:
            return json.loads(control_plane.ctl("jobs", "show", run["id"], "--json").stdout)["state"]

        wait_for(lambda: state() == "running", timeout=30, interval=0.2, what="run started")
        control_plane.ctl("jobs", "cancel", run["id"], "--reason", "operator changed their mind")
        assert state() == "cancelled"
        ended = wait_for(
            lambda: next((e for e in collector.process.log_events() if e.get("event") == "job_run_ended"), None),  # type: ignore[union-attr]
            timeout=10,
            what="the collector stopped the scan",
        )
        assert ended["state"] == "JOB_STATE_CANCELLED"
        assert "operator changed their mind" in ended["error"]
        assert state() == "cancelled"
    finally:
        collector.stop()
        listeners.close()
