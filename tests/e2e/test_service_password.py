"""Service-password rotation with real processes (issue 11 item 5, ADR 0025).

A registered collector holds a live sealed session while an admin runs `collectors
set-password`: the session goes on; the collector, its password file still old,
reconnects during the overlap; the operator edits the file and the next reconnection
proves the new password without a restart; after the overlap the old password is refused
with a reason an operator can act on, and nothing about the collector changes.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from outpost.enrollment_token import EnrollmentToken, write_enrollment_token_file
from tests.e2e.test_discovery_flow import PASSWORD, enabled_collector
from tests.process_harness import Collector, ControlPlane, wait_for

NEW_PASSWORD = "the-rotated-Pa55word-e2e"
OVERLAP_SECONDS = 30


def show(plane: ControlPlane, name: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(plane.ctl("collectors", "show", name, "--json").stdout)
    return record


def events(collector: Collector, name: str) -> list[dict[str, Any]]:
    return [e for e in collector.log_events() if e.get("event") == name]


def reconnected(plane: ControlPlane, collector: Collector) -> str:
    """Make the collector reconnect (its gateway restarts); the new session's id."""
    before = collector.status()["session_id"]
    plane.restart_gateway()
    status = collector.wait_status(
        lambda s: s.get("state") == "enabled" and s.get("session_id") not in (None, before), what="a new session"
    )
    return str(status["session_id"])


def test_a_password_rotation_keeps_the_session_and_the_old_password_works_only_for_the_overlap(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    plane = control_plane
    collector = enabled_collector(plane, tmp_path, "edge-pw", transport="tcp")
    password_file = collector.workdir / "edge-pw.password"
    try:
        session = collector.status()["session_id"]
        assert show(plane, "edge-pw")["password_on_record"]
        new_file = tmp_path / "new.password"
        new_file.write_text(NEW_PASSWORD + "\n")

        out = plane.ctl(
            "collectors",
            "set-password",
            "edge-pw",
            "--password-file",
            str(new_file),
            "--overlap",
            f"{OVERLAP_SECONDS}s",
        )

        assert "the old one is accepted until" in out.stdout
        record = show(plane, "edge-pw")
        assert record["password_rotated_at"] and record["previous_password_accepted_until"]
        assert record["password_last_proved"] == ""
        until = datetime.fromisoformat(record["previous_password_accepted_until"]).timestamp()
        audit = json.loads(plane.ctl("audit", "list", "--json").stdout)
        assert [e["target"] for e in audit if e["method"] == "SetCollectorPassword"] == ["edge-pw"]
        assert NEW_PASSWORD not in json.dumps(audit)
        # The live session is not touched: a password is checked at handshakes only.
        assert collector.status()["session_id"] == session
        assert not events(collector, "session_closed")

        # Its file still holds the old password: accepted during the overlap.
        reconnected(plane, collector)
        assert show(plane, "edge-pw")["password_last_proved"] == "previous"

        # The operator edits the file; the next reconnection proves the new one, no restart.
        password_file.write_text(NEW_PASSWORD + "\n")
        reconnected(plane, collector)
        assert show(plane, "edge-pw")["password_last_proved"] == "current"
        assert events(collector, "password_file_changed")
        assert len(events(collector, "collector_started")) == 1

        # After the overlap the old password is refused at the next reconnection, clearly.
        password_file.write_text(PASSWORD + "\n")
        wait_for(lambda: time.time() > until + 1, timeout=OVERLAP_SECONDS + 10, what="the overlap's end")
        plane.restart_gateway()
        refused = wait_for(
            lambda: [
                e
                for e in events(collector, "session_closed")
                if e.get("reason") == "DISCONNECT_REASON_AUTHENTICATION_FAILED"
            ],
            timeout=30,
            what="the refusal of the old password",
        )
        assert "service password does not match the one on record for collector 'edge-pw'" in refused[0]["message"]
        after = show(plane, "edge-pw")
        assert after["state"] == "enabled" and after["fingerprint"] == record["fingerprint"]
        assert not after["previous_password_accepted_until"]
        assert [c["name"] for c in plane.collectors()] == ["edge-pw"]  # nothing new stored

        # Fixing the file is enough: the collector retries on its own.
        password_file.write_text(NEW_PASSWORD + "\n")
        collector.wait_status(lambda s: s.get("state") == "enabled", what="back after the fix", timeout=60)
    finally:
        collector.stop()


def test_an_enrolled_polling_collector_proves_the_password_its_first_hello_carried(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """Enrollment (ADR 0022) takes the first hello's verifier as the service password (trust
    on first use); from then on every handshake proves it, over HTTP polling too."""
    plane = control_plane
    created = json.loads(plane.ctl("enrollment-tokens", "create", "pw-rollout", "--zone", "lab", "--json").stdout)
    token_path = tmp_path / "enroll.token"
    write_enrollment_token_file(token_path, EnrollmentToken.parse(created["enrollment_token"]))
    collector = Collector(
        tmp_path,
        "edge-enrolled",
        [plane.url("http_poll")],
        PASSWORD,
        zone="",
        extra_args=["--enrollment-token-file", str(token_path)],
    ).start()
    try:
        collector.wait_state("enabled")
        assert show(plane, "edge-enrolled")["password_on_record"]
        collector.stop()
        collector.restart()  # a new handshake, as a registered collector
        collector.wait_state("enabled")
        assert show(plane, "edge-enrolled")["password_last_proved"] == "current"

        collector.stop()
        collector.password = "not-" + PASSWORD
        collector.restart()
        refused = wait_for(
            lambda: [
                e
                for e in events(collector, "session_closed")
                if e.get("reason") == "DISCONNECT_REASON_AUTHENTICATION_FAILED"
            ],
            timeout=30,
            what="the refusal of a wrong password",
        )
        assert "service password does not match" in refused[0]["message"]
        assert show(plane, "edge-enrolled")["state"] == "enabled"
    finally:
        collector.stop()
