"""The audit trail records the authenticated principal for every change, never a name the
client sent: real processes, a real collector, `outpostctl audit list --json` as the oracle."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.process_harness import Collector, ControlPlane, wait_for

PASSWORD = "audit-Pa55word-1d9c"


def _token(plane: ControlPlane, name: str, role: str) -> str:
    return str(json.loads(plane.ctl("tokens", "create", name, "--role", role, "--json").stdout)["token"])


def _events(plane: ControlPlane) -> list[dict[str, Any]]:
    return list(json.loads(plane.ctl("audit", "list", "--json", "--limit", "1000").stdout))


def test_every_change_records_the_principal_the_time_and_the_peer(plane: ControlPlane, tmp_path: Path) -> None:
    alice = _token(plane, "alice-ops", "admin")
    bob = _token(plane, "bob-ops", "operator")
    collector = Collector(tmp_path, "edge-audit", [plane.url("grpc")], PASSWORD).start()
    try:
        collector.wait_state("pending")
        # A client-supplied actor (the old way) changes nothing: the token decides who it was.
        os.environ["OUTPOST_ACTOR"] = "mallory"
        try:
            plane.ctl(
                "collectors", "register", collector.name, "--username", collector.username,
                "--password-stdin", "--enable", stdin=PASSWORD + "\n", token=alice,
            )  # fmt: skip
            plane.ctl("collectors", "disable", collector.name, "--reason", "audit test", token=bob)
            plane.ctl("collectors", "enable", collector.name, token=bob)
        finally:
            del os.environ["OUTPOST_ACTOR"]
        listed = {c["name"]: c for c in plane.collectors()}
        assert listed[collector.name]["state_changed_by"] == "bob-ops"
        refused = plane.ctl("collectors", "remove", collector.name, "--yes", token=bob, check=False)
        assert refused.returncode == 1 and "needs role admin" in refused.stderr
        plane.ctl("collectors", "remove", collector.name, "--yes", token=alice)
    finally:
        collector.stop()
    plane.ctl("credentials", "add", "audit-snmp", "--type", "snmp-v2c", "--community-stdin",
              stdin="public\n", token=alice)  # fmt: skip
    plane.ctl("credentials", "remove", "audit-snmp", "--yes", token=alice)
    _token(plane, "carol-viewer", "viewer")
    plane.ctl("tokens", "revoke", "carol-viewer", token=alice)

    events = wait_for(
        lambda: (found := _events(plane)) and any(e["method"] == "RevokeToken" for e in found) and found,
        what="the audit trail",
    )
    done = {(e["method"], e["target"], e["outcome"]): e for e in events}
    expected = {
        ("RegisterCollector", "edge-audit", "ok"): "alice-ops",
        ("DisableCollector", "edge-audit", "ok"): "bob-ops",
        ("EnableCollector", "edge-audit", "ok"): "bob-ops",
        ("RemoveCollector", "edge-audit", "PERMISSION_DENIED"): "bob-ops",
        ("RemoveCollector", "edge-audit", "ok"): "alice-ops",
        ("CreateCredential", "audit-snmp", "ok"): "alice-ops",
        ("DeleteCredential", "audit-snmp", "ok"): "alice-ops",
        ("CreateToken", "alice-ops", "ok"): "bootstrap-admin",
        ("RevokeToken", "carol-viewer", "ok"): "alice-ops",
    }
    for key, principal in expected.items():
        assert key in done, f"no audit event {key}: {sorted(done)}"
        event = done[key]
        assert event["principal"] == principal, (key, event)
        assert event["peer"].startswith(("ipv4:127.0.0.1:", "ipv6:")), event
        assert event["at"], event
    assert all(e["principal"] != "mallory" for e in events)
    assert PASSWORD not in json.dumps(events)


def test_a_scheduler_change_is_audited_with_its_principal(plane: ControlPlane) -> None:
    dana = _token(plane, "dana-ops", "operator")
    plane.ctl(
        "discoveries",
        "create",
        "audited",
        "--targets",
        "127.0.77.0/30",
        "--ports",
        "22",
        "--zone",
        "lab",
        "--allow-unknown",
        token=dana,
    )
    plane.ctl("discoveries", "remove", "audited", "--yes", token=dana)
    events = [e for e in _events(plane) if e["service"] == "scheduler"]
    methods = {(e["method"], e["target"], e["principal"]) for e in events}
    assert ("CreateDiscovery", "audited", "dana-ops") in methods
    assert ("DeleteDiscovery", "audited", "dana-ops") in methods
