"""The walking skeleton as an operator lives it: once per transport on SQLite, over gRPC on PostgreSQL.

announce -> pending -> wrong credentials refused (still pending) -> right password with
--enable -> live within 1 s -> disable -> disabled within 1 s -> gateway restart -> the
collector comes back as itself (no second pending entry).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.process_harness import Collector, ControlPlane, wait_for

TRANSPORTS = ["grpc", "websocket", "tcp"]
PASSWORD = "correct horse battery staple"
LIVE_WITHIN_SECONDS = 1.0


def _only(plane: ControlPlane, name: str) -> dict:
    entries = [c for c in plane.collectors() if c["name"] == name]
    assert len(entries) == 1, entries
    return entries[0]


# Every transport on SQLite, and gRPC on PostgreSQL too: what the database holds here (the
# pending entry, the registration, the states, one entry after the restart) is the
# registry's, the same whichever transport carried the hello; the transports are the
# gateway's and do not touch the database.
TRANSPORTS_AND_DATABASES = [
    *((transport, "sqlite") for transport in TRANSPORTS),
    pytest.param("grpc", "postgres", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize(("transport", "database_url"), TRANSPORTS_AND_DATABASES, indirect=["database_url"])
def test_collector_is_announced_registered_disabled_and_survives_gateway_restart(
    control_plane: ControlPlane, tmp_path: Path, transport: str
) -> None:
    collector = Collector(tmp_path, f"edge-{transport}", [control_plane.url(transport)], PASSWORD).start()
    try:
        pending = collector.wait_state("pending")
        entry = wait_for(
            lambda: _only(control_plane, collector.name) if _only(control_plane, collector.name)["connected"] else None,
            what="pending and connected",
        )
        assert entry["state"] == "pending"
        assert entry["zone"] == "lab"
        assert entry["fingerprint"] == pending["fingerprint"]
        assert entry["fingerprint"].startswith("SHA256:")
        assert entry["last_seen"]

        wrong_password = control_plane.ctl(
            "collectors",
            "register",
            collector.name,
            "--username",
            collector.username,
            "--password-stdin",
            "--enable",
            stdin="not the password\n",
            check=False,
        )
        assert wrong_password.returncode != 0
        assert "does not match" in wrong_password.stderr
        wrong_user = control_plane.ctl(
            "collectors",
            "register",
            collector.name,
            "--username",
            "intruder",
            "--password-stdin",
            "--enable",
            stdin=PASSWORD + "\n",
            check=False,
        )
        assert wrong_user.returncode != 0
        assert "does not match" in wrong_user.stderr
        assert _only(control_plane, collector.name)["state"] == "pending"
        assert collector.status()["state"] == "pending"

        password_file = tmp_path / "admin-typed-password"
        password_file.write_text(PASSWORD + "\n")
        control_plane.ctl(
            "collectors",
            "register",
            collector.name,
            "--username",
            collector.username,
            "--password-file",
            str(password_file),
            "--enable",
        )
        registered_at = time.monotonic()
        collector.wait_state("enabled", timeout=LIVE_WITHIN_SECONDS)
        assert time.monotonic() - registered_at < LIVE_WITHIN_SECONDS
        assert _only(control_plane, collector.name)["state"] == "enabled"

        control_plane.ctl("collectors", "disable", collector.name, "--reason", "maintenance window")
        disabled_at = time.monotonic()
        collector.wait_state("disabled", timeout=LIVE_WITHIN_SECONDS)
        assert time.monotonic() - disabled_at < LIVE_WITHIN_SECONDS
        assert any(
            e.get("event") == "collector_state_changed"
            and e.get("state") == "disabled"
            and "maintenance window" in e.get("reason", "")
            for e in collector.process.log_events()  # type: ignore[union-attr]
        )

        first_session = collector.status()["session_id"]
        control_plane.restart_gateway()
        wait_for(
            lambda: (
                collector.status().get("state") == "disabled" and collector.status().get("session_id") != first_session
            ),
            what="collector reconnected after gateway restart",
        )
        entry = wait_for(
            lambda: _only(control_plane, collector.name) if _only(control_plane, collector.name)["connected"] else None,
            what="connected again",
        )
        assert entry["state"] == "disabled"
        assert entry["fingerprint"] == pending["fingerprint"]
        assert len(control_plane.collectors()) == 1

        control_plane.ctl("collectors", "enable", collector.name)
        collector.wait_state("enabled", timeout=LIVE_WITHIN_SECONDS)
    finally:
        collector.stop()
    assert not any(PASSWORD in line for line in collector.process.log().splitlines())  # type: ignore[union-attr]
    assert PASSWORD not in (control_plane.registry.log() + control_plane.gateway.log())  # type: ignore[union-attr]


def test_removing_a_collector_ends_its_live_session(control_plane: ControlPlane, tmp_path: Path) -> None:
    collector = Collector(tmp_path, "edge-removed", [control_plane.url("grpc")], PASSWORD).start()
    try:
        collector.wait_state("pending")
        control_plane.ctl("collectors", "remove", collector.name, "--yes")
        wait_for(
            lambda: any(
                e.get("event") == "session_closed" and e.get("reason") == "DISCONNECT_REASON_REMOVED"
                for e in collector.process.log_events()
            ),  # type: ignore[union-attr]
            timeout=LIVE_WITHIN_SECONDS + 1,
            what="collector told it was removed",
        )
    finally:
        collector.stop()
