"""Rotation without downtime, with real processes (issue 11 item 5, ADR 0024).

For each rotation: a collector holds a live sealed session and runs discoveries that
produce result batches before, during and after it; the session id stays the same, every
run succeeds and the inventory matches the loopback listeners. Then the collector is
restarted and must come back with the new credential; and after the window the old one
is refused with a reason an operator can act on.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from outpost.access_key import AccessKey, read_access_key_file, write_access_key_file
from services.collector.store.server_pin import ServerPinStore
from tests.e2e.test_discovery_flow import PASSWORD, enabled_collector, inventory_open_ports
from tests.process_harness import BIN, Collector, ControlPlane, wait_for

ACTIVATE_IN = 5
RETIRE_AFTER = 6
HOSTS = ["127.0.0.81", "127.0.0.82", "127.0.0.83"]


@pytest.fixture
def listeners() -> Iterator[tuple[list[int], set[tuple[str, int]]]]:
    """Listening sockets on free ports of this test's loopback addresses: (ports, open pairs)."""
    sockets = []
    first = socket.socket()
    first.bind((HOSTS[0], 0))
    first.listen(16)
    sockets.append(first)
    second = socket.socket()
    second.bind((HOSTS[2], 0))
    second.listen(16)
    sockets.append(second)
    ports = [first.getsockname()[1], second.getsockname()[1]]
    try:
        yield ports, {(HOSTS[0], ports[0]), (HOSTS[2], ports[1])}
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def plane(tmp_path: Path, database_url: str) -> Iterator[ControlPlane]:
    # Gateways re-read the server keys every 0.3 s here (30 s by default).
    control = ControlPlane(tmp_path / "server", database_url, gateway_args=["--server-key-refresh", "0.3"]).start()
    try:
        yield control
    finally:
        control.stop()


def run_discovery(plane: ControlPlane) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(plane.ctl("discoveries", "run", "lab", "--wait", "--json").stdout)
    assert summary["state"] == "succeeded", summary
    return summary


def events(collector: Collector, name: str) -> list[dict[str, Any]]:
    return [e for e in collector.log_events() if e.get("event") == name]


def server_info(plane: ControlPlane) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(plane.ctl("server", "info", "--json").stdout)["registry"]
    return info


def test_a_server_key_rotation_keeps_the_live_session_and_every_batch_and_retires_the_old_key(
    plane: ControlPlane, tmp_path: Path, listeners: tuple[list[int], set[tuple[str, int]]]
) -> None:
    ports, open_ports = listeners
    collector = enabled_collector(plane, tmp_path, "edge-rotate", transport="tcp")
    try:
        plane.ctl(
            "discoveries",
            "create",
            "lab",
            "--targets",
            f"{HOSTS[0]}-{HOSTS[-1]}",
            "--ports",
            ",".join(map(str, ports)),
            "--collector",
            "edge-rotate",
            "--probes",
            "tcp,banners",
        )
        session = collector.status()["session_id"]
        old = server_info(plane)["server_key_fingerprint"]
        run_discovery(plane)

        window = ["--activate-in", f"{ACTIVATE_IN}s", "--retire-after", f"{RETIRE_AFTER}s"]
        rotated = json.loads(plane.ctl("server", "rotate-key", *window, "--json").stdout)
        new = rotated["next_fingerprint"]
        assert rotated["current_fingerprint"] == old and new != old
        assert server_info(plane)["next_server_key_fingerprint"] == new

        # The live session hears of the next key and pins it beside the current one.
        wait_for(lambda: events(collector, "server_key_announced"), timeout=10, what="the announcement")
        pins = ServerPinStore(collector.data_dir).load_all()
        assert [(p.activates_at is not None, p.retired) for p in pins] == [(True, False)]
        run_discovery(plane)  # announced, not yet active

        wait_for(lambda: server_info(plane)["server_key_fingerprint"] == new, timeout=ACTIVATE_IN + 10)
        run_discovery(plane)  # active: the session made under the old key keeps going

        assert collector.status()["session_id"] == session, "the rotation dropped the live session"
        assert len(events(collector, "session_accepted")) == 1
        jobs = json.loads(plane.ctl("jobs", "list", "--json").stdout)
        assert [j["state"] for j in jobs] == ["succeeded"] * 3
        assert inventory_open_ports(plane) == open_ports

        # A reconnect uses the new key and stops trusting the old one (the access key's).
        collector.stop()
        collector.restart()
        collector.wait_status(
            lambda s: s.get("state") == "enabled" and s.get("session_id") != session, what="a new session"
        )
        rotated_event = wait_for(lambda: events(collector, "server_key_rotated"), timeout=10)
        assert rotated_event[-1]["fingerprint"] == new
        pins = ServerPinStore(collector.data_dir).load_all()
        assert (pins[0].activates_at, pins[0].retired) == (None, False)
        assert [p.retired for p in pins[1:]] == [True]
        run_discovery(plane)

        # After the window a collector that knows only the old key (the bootstrap access
        # key pins it) is refused: the gateway no longer holds that key.
        retires_at = rotated["current_retires_at"]
        wait_for(lambda: time.time() > _unix(retires_at) + 1, timeout=ACTIVATE_IN + RETIRE_AFTER + 10)
        stale = Collector(tmp_path, "edge-stale", [plane.url("tcp")], "stale-password", zone="lab").start()
        try:
            refused = wait_for(lambda: events(stale, "server_key_mismatch"), timeout=15, what="the refusal")
            assert old.split(":", 1)[1][:16] in refused[0]["message"]
            assert stale.status().get("state") in (None, "disconnected")
            pending = json.loads(plane.ctl("collectors", "list", "--state", "pending", "--json").stdout)
            assert "edge-stale" not in {c["name"] for c in pending}
        finally:
            stale.stop()
    finally:
        collector.stop()


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


OVERLAP = 8
KEY_REFUSED = "DISCONNECT_REASON_ACCESS_KEY_REFUSED"


def test_an_access_key_rotation_hands_the_new_key_to_the_live_session_and_retires_the_old_one(
    plane: ControlPlane, tmp_path: Path, listeners: tuple[list[int], set[tuple[str, int]]]
) -> None:
    ports, open_ports = listeners
    created = json.loads(plane.ctl("access-keys", "create", "site", "--zone", "lab", "--json").stdout)
    configured = tmp_path / "site.key"
    write_access_key_file(configured, AccessKey.parse(created["access_key"]))
    collector = Collector(
        tmp_path, "edge-ak", [plane.url("tcp")], PASSWORD, zone="lab", access_key_file=configured
    ).start()
    try:
        collector.wait_state("pending")
        plane.ctl(
            "collectors",
            "register",
            "edge-ak",
            "--username",
            collector.username,
            "--password-stdin",
            "--enable",
            stdin=PASSWORD + "\n",
        )
        collector.wait_state("enabled")
        plane.ctl(
            "discoveries",
            "create",
            "lab",
            "--targets",
            f"{HOSTS[0]}-{HOSTS[-1]}",
            "--ports",
            ",".join(map(str, ports)),
            "--collector",
            "edge-ak",
            "--probes",
            "tcp,banners",
        )
        session = collector.status()["session_id"]
        run_discovery(plane)

        rotated = json.loads(plane.ctl("access-keys", "rotate", "site", "--overlap", f"{OVERLAP}s", "--json").stdout)
        new = AccessKey.parse(rotated["access_key"])
        assert rotated["replaced_key_id"] == created["key_id"] and new.key_id != created["key_id"]
        assert rotated["zone"] == "lab"

        # The live session is handed the new key and stores it, private, in its data dir.
        stored_path = collector.data_dir / "access.key"
        wait_for(lambda: events(collector, "access_key_rotated"), timeout=10, what="the new access key")
        assert read_access_key_file(stored_path) == new
        assert stored_path.stat().st_mode & 0o777 == 0o600
        assert read_access_key_file(configured).key_id == created["key_id"], "the operator's file is not rewritten"
        run_discovery(plane)

        assert collector.status()["session_id"] == session, "the rotation dropped the live session"
        assert len(events(collector, "session_accepted")) == 1
        jobs = json.loads(plane.ctl("jobs", "list", "--json").stdout)
        assert [j["state"] for j in jobs] == ["succeeded"] * 2
        assert inventory_open_ports(plane) == open_ports

        # After the overlap the old key is refused; the restarted collector comes back with the new one.
        wait_for(lambda: time.time() > _unix(rotated["replaced_valid_until"]) + 1, timeout=OVERLAP + 10)
        states = {k["key_id"]: k["state"] for k in json.loads(plane.ctl("access-keys", "list", "--json").stdout)}
        assert (states[created["key_id"]], states[new.key_id]) == ("expired", "valid")
        collector.stop()
        collector.restart()
        collector.wait_status(
            lambda s: s.get("state") == "enabled" and s.get("session_id") != session, what="a new session"
        )
        chosen = wait_for(lambda: events(collector, "access_key_from_data_dir"), timeout=10)
        assert chosen[-1]["key_id"] == new.key_id
        run_discovery(plane)
        assert inventory_open_ports(plane) == open_ports

        # A collector that holds only the old key is refused before it says anything, and is not pending.
        stale = Collector(
            tmp_path, "edge-ak-stale", [plane.url("tcp")], "stale-password", zone="lab", access_key_file=configured
        ).start()
        try:
            refused = wait_for(
                lambda: [
                    e
                    for e in events(stale, "handshake_refused")
                    if e.get("reason") == "DISCONNECT_REASON_ACCESS_KEY_REFUSED"
                ],
                timeout=15,
                what="the refusal of the old key",
            )
            assert refused[0]["message"]
            assert stale.status().get("state") in (None, "disconnected")
            pending = json.loads(plane.ctl("collectors", "list", "--state", "pending", "--json").stdout)
            assert "edge-ak-stale" not in {c["name"] for c in pending}
        finally:
            stale.stop()
    finally:
        collector.stop()


def test_rotating_an_unknown_or_revoked_access_key_is_refused_clearly(plane: ControlPlane) -> None:
    unknown = plane.ctl("access-keys", "rotate", "no-such-key", check=False)
    assert unknown.returncode == 1 and "no access key named 'no-such-key'" in unknown.stderr
    plane.ctl("access-keys", "create", "gone")
    plane.ctl("access-keys", "revoke", "gone")
    revoked = plane.ctl("access-keys", "rotate", "gone", check=False)
    assert revoked.returncode == 1 and "is revoked" in revoked.stderr and "create a new one" in revoked.stderr
    bad = plane.ctl("access-keys", "rotate", "bootstrap", "--overlap", "soon", check=False)
    assert bad.returncode != 0 and "--overlap" in bad.stderr

    # A rotation is an audited admin change, and `list` shows both keys during the overlap.
    plane.ctl("access-keys", "create", "audited")
    rotated = json.loads(plane.ctl("access-keys", "rotate", "audited", "--json").stdout)
    events = json.loads(plane.ctl("audit", "list", "--json").stdout)
    seen = {(e["method"].rsplit("/", 1)[-1], e["target"], e["principal"], e["outcome"]) for e in events}
    assert ("RotateAccessKey", "audited", "bootstrap-admin", "ok") in seen
    listed = json.loads(plane.ctl("access-keys", "list", "--json").stdout)
    both = {k["key_id"]: (k["state"], k["replaced_by"]) for k in listed if k["name"] == "audited"}
    assert both == {rotated["replaced_key_id"]: ("valid", rotated["key_id"]), rotated["key_id"]: ("valid", "")}


def collector_record(plane: ControlPlane, name: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(plane.ctl("collectors", "show", name, "--json").stdout)
    return record


def test_a_collector_key_rotation_keeps_the_live_session_and_the_old_key_is_refused_after(
    plane: ControlPlane, tmp_path: Path, listeners: tuple[list[int], set[tuple[str, int]]]
) -> None:
    ports, open_ports = listeners
    collector = enabled_collector(plane, tmp_path, "edge-idkey", transport="tcp")
    try:
        plane.ctl(
            "discoveries",
            "create",
            "lab",
            "--targets",
            f"{HOSTS[0]}-{HOSTS[-1]}",
            "--ports",
            ",".join(map(str, ports)),
            "--collector",
            "edge-idkey",
            "--probes",
            "tcp,banners",
        )
        session = collector.status()["session_id"]
        old = collector_record(plane, "edge-idkey")["fingerprint"]
        assert collector.status()["fingerprint"] == old
        old_copy = tmp_path / "old-copy"
        shutil.copytree(collector.data_dir, old_copy / "collector-edge-idkey")

        # A run in progress while the key rotates: started, then the rotation is requested.
        plane.ctl("discoveries", "run", "lab", "--json")
        rotate = subprocess.run(
            [str(BIN / "outpost-collector"), "rotate-key", "--data-dir", str(collector.data_dir)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert "created: next key SHA256:" in rotate.stdout
        rotated = wait_for(lambda: events(collector, "key_rotated"), timeout=15, what="the accepted rotation")
        new = rotated[0]["fingerprint"]
        assert rotated[0]["old_fingerprint"] == old and new != old and new in rotate.stdout
        assert not (collector.data_dir / "collector.key.next").exists()
        record = collector_record(plane, "edge-idkey")
        assert record["fingerprint"] == new and record["key_rotated_at"]
        assert record["state"] == "enabled"
        wait_for(
            lambda: [j["state"] for j in json.loads(plane.ctl("jobs", "list", "--json").stdout)] == ["succeeded"],
            timeout=30,
            what="the run in progress to succeed",
        )
        run_discovery(plane)
        assert collector.status()["session_id"] == session, "the rotation dropped the live session"
        assert len(events(collector, "session_accepted")) == 1
        assert inventory_open_ports(plane) == open_ports
        audit = json.loads(plane.ctl("audit", "list", "--json").stdout)
        assert [e["principal"] for e in audit if e["method"] == "RotateCollectorKey"] == ["collector:edge-idkey"]

        # A restart proves the new key, with no admin step.
        collector.stop()
        collector.restart()
        collector.wait_status(
            lambda s: s.get("state") == "enabled" and s.get("session_id") != session, what="a new session"
        )
        assert collector.status()["fingerprint"] == new
        assert not events(collector, "presenting_next_key")
        run_discovery(plane)

        # A copy of the old data dir holds the old key: refused as a key mismatch, never pending.
        stale = Collector(old_copy, "edge-idkey", [plane.url("tcp")], PASSWORD, zone="lab").start()
        try:
            refused = wait_for(
                lambda: [
                    e
                    for e in events(stale, "session_closed")
                    if e.get("reason") == "DISCONNECT_REASON_AUTHENTICATION_FAILED"
                ],
                timeout=15,
                what="the refusal of the old key",
            )
            assert "public key does not match" in refused[0]["message"]
            assert stale.status().get("state") in (None, "disconnected")
        finally:
            stale.stop()
        record = collector_record(plane, "edge-idkey")
        assert (record["fingerprint"], record["state"]) == (new, "enabled")
        assert collector.status().get("state") == "enabled"
    finally:
        collector.stop()
