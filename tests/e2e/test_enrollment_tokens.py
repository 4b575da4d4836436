"""Zone enrollment tokens against the real processes, as an operator rolls collectors out (ADR 0022).

The attacker's view first: a collector outside a token's bounds (used up, expired, from
another network, revoked, or with a token nobody issued) is refused with its own reason,
and leaves no pending entry and no collector row. Then the operator's: a collector given
a valid token comes up enabled in the token's zone with no admin step, runs a discovery
meant for that zone, and `collectors show` and `audit list` name the token. The gateway
sees collectors at 127.0.0.1, so `--cidr 10.0.0.0/8` is "another network" and
`--cidr 127.0.0.0/8` is theirs.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from outpost.enrollment_token import EnrollmentToken, write_enrollment_token_file
from tests.peers.recording_proxy import RecordingProxy
from tests.process_harness import Collector, ControlPlane, wait_for

PASSWORD = "enroll-Pa55word-6b1e"
REFUSED = "DISCONNECT_REASON_ENROLLMENT_REFUSED"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    directory = tmp_path_factory.mktemp("enrollment")
    control = ControlPlane(directory / "server", f"sqlite+aiosqlite:///{directory / 'outpost.db'}").start()
    try:
        yield control
    finally:
        control.stop()


def create(plane: ControlPlane, name: str, *args: str) -> dict[str, Any]:
    created: dict[str, Any] = json.loads(plane.ctl("enrollment-tokens", "create", name, *args, "--json").stdout)
    return created


def token_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "enroll.token"
    write_enrollment_token_file(path, EnrollmentToken.parse(text))
    return path


def start_with_token(plane: ControlPlane, tmp_path: Path, name: str, text: str, zone: str = "") -> Collector:
    """A collector started with only the token to get it in (the zone left to the token)."""
    return Collector(
        tmp_path / name,
        name,
        [plane.url("grpc")],
        PASSWORD,
        zone=zone,
        extra_args=["--enrollment-token-file", str(token_file(tmp_path, text))],
    ).start()


def collectors(plane: ControlPlane) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(plane.ctl("collectors", "list", "--json").stdout)}


def tokens(plane: ControlPlane) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in json.loads(plane.ctl("enrollment-tokens", "list", "--all", "--json").stdout)}


def refusal(collector: Collector) -> dict[str, Any]:
    """The collector's own account of its refusal: the reason, the server's message, the advice."""

    def logged() -> dict[str, Any] | None:
        assert collector.process is not None
        for event in collector.process.log_events():
            if event.get("event") == "reconnect_needs_operator" and event.get("reason") == REFUSED:
                return event
        return None

    found: dict[str, Any] = wait_for(logged, 30, what=f"collector {collector.name} to be refused its enrollment")
    return found


def assert_refused_leaving_nothing(plane: ControlPlane, collector: Collector, *phrases: str) -> str:
    try:
        event = refusal(collector)
    finally:
        collector.stop()
    message = str(event["message"])
    for phrase in phrases:
        assert phrase in message, message
    assert "enrollment-tokens" in event["advice"]
    assert event["retry_in"] >= 60  # not transient: minutes, not seconds
    assert collector.name not in collectors(plane)  # no pending entry, no collector row
    return message


# --- refused: each with its own reason ---------------------------------------------------------
def test_a_used_up_token_is_refused_with_its_count(plane: ControlPlane, tmp_path: Path) -> None:
    text = create(plane, "one-use", "--zone", "lab", "--uses", "1")["enrollment_token"]
    first = start_with_token(plane, tmp_path / "a", "edge-used-1", text)
    try:
        first.wait_state("enabled")
    finally:
        first.stop()

    second = start_with_token(plane, tmp_path / "b", "edge-used-2", text)

    assert_refused_leaving_nothing(plane, second, "'one-use' is used up (used 1 of 1)")
    assert tokens(plane)["one-use"]["state"] == "used_up"


def test_an_expired_token_is_refused_saying_when(plane: ControlPlane, tmp_path: Path) -> None:
    text = create(plane, "brief", "--zone", "lab", "--expires", "1s")["enrollment_token"]
    wait_for(lambda: tokens(plane)["brief"]["state"] == "expired", 10, what="the token to expire")

    collector = start_with_token(plane, tmp_path, "edge-late", text)

    assert_refused_leaving_nothing(plane, collector, "'brief' expired at")


def test_a_collector_outside_the_tokens_network_is_refused_naming_both(plane: ControlPlane, tmp_path: Path) -> None:
    text = create(plane, "branch-net", "--zone", "lab", "--cidr", "10.0.0.0/8")["enrollment_token"]

    collector = start_with_token(plane, tmp_path, "edge-elsewhere", text)

    assert_refused_leaving_nothing(
        plane, collector, "'branch-net' admits collectors from 10.0.0.0/8 only", "connected from 127.0.0.1"
    )
    assert tokens(plane)["branch-net"]["uses_used"] == 0


def test_a_revoked_token_is_refused_saying_when_and_by_whom(plane: ControlPlane, tmp_path: Path) -> None:
    text = create(plane, "withdrawn", "--zone", "lab")["enrollment_token"]
    revoked = plane.ctl("enrollment-tokens", "revoke", "withdrawn").stdout
    assert revoked.startswith("revoked enrollment token 'withdrawn'")

    collector = start_with_token(plane, tmp_path, "edge-revoked", text)

    assert_refused_leaving_nothing(plane, collector, "'withdrawn' was revoked at", "by bootstrap-admin")


def test_a_token_nobody_issued_is_refused_as_unknown(plane: ControlPlane, tmp_path: Path) -> None:
    invented = EnrollmentToken("et_00000000deadbeef", bytes(32)).encode()

    collector = start_with_token(plane, tmp_path, "edge-forged", invented)

    message = assert_refused_leaving_nothing(plane, collector, "et_00000000deadbeef is not known to this server")
    assert "zone" not in message.split(":")[0]


def test_the_refusals_are_distinct_and_explain_shows_them(plane: ControlPlane) -> None:
    """Runs after the refusals above (file order): each left evidence for `collectors explain`."""
    seen = {}
    for name in ("edge-used-2", "edge-late", "edge-elsewhere", "edge-revoked", "edge-forged"):
        explained = json.loads(plane.ctl("collectors", "explain", name, "--json", check=False).stdout)
        [finding] = [f for f in explained["findings"] if f["code"] == "enrollment_refused"]
        seen[name] = finding["message"].split(": ", 1)[1]
    assert len(set(seen.values())) == 5, seen


# --- enrolled: no admin step ---------------------------------------------------------------------
def test_a_valid_token_enrolls_the_collector_enabled_in_its_zone_and_it_runs_discovery(
    plane: ControlPlane, tmp_path: Path
) -> None:
    created = create(plane, "lab-rollout", "--zone", "lab", "--uses", "5", "--expires", "1d", "--cidr", "127.0.0.0/8")
    assert (created["zone"], created["uses"], created["cidrs"]) == ("lab", 5, ["127.0.0.0/8"])
    assert created["expires_at"]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    collector = start_with_token(plane, tmp_path, "edge-enrolled", created["enrollment_token"])
    try:
        collector.wait_state("enabled")  # no `collectors register`, no `enable`

        shown = json.loads(plane.ctl("collectors", "show", "edge-enrolled", "--json").stdout)
        assert (shown["zone"], shown["state"]) == ("lab", "enabled")
        assert shown["enrolled_by"] == shown["state_changed_by"] == "enrollment-token:lab-rollout"
        assert "enrollment-token:lab-rollout" in plane.ctl("collectors", "show", "edge-enrolled").stdout
        assert tokens(plane)["lab-rollout"]["uses_used"] == 1

        trail = json.loads(plane.ctl("audit", "list", "--json", "--limit", "1000").stdout)
        [enrolled] = [e for e in trail if e["method"] == "EnrollCollector" and e["target"] == "edge-enrolled"]
        assert enrolled["principal"] == "enrollment-token:lab-rollout"
        assert "into zone 'lab'" in enrolled["detail"]

        plane.ctl(
            "discoveries", "create", "lab-sweep", "--targets", "127.0.0.1", "--ports", str(port),
            "--zone", "lab", "--probes", "tcp",
        )  # fmt: skip
        run = json.loads(plane.ctl("discoveries", "run", "lab-sweep", "--wait", "--json").stdout)
        assert run["state"] == "succeeded", run
        [job] = [j for j in json.loads(plane.ctl("jobs", "list", "--json").stdout) if j["id"] == run["id"]]
        assert job["collector"] == "edge-enrolled"

        # Restarted with the token file still in place: it does not send the token again.
        collector.stop()
        collector.start()
        collector.wait_state("enabled")
        assert (collector.data_dir / "registered").exists()
        assert tokens(plane)["lab-rollout"]["uses_used"] == 1
    finally:
        collector.stop()
        listener.close()


def test_an_observer_on_the_path_never_sees_the_token(plane: ControlPlane, tmp_path: Path) -> None:
    """The token rides in the Hello, which travels only inside the sealed session (ADR 0022)."""
    text = create(plane, "observed", "--zone", "lab", "--uses", "1")["enrollment_token"]
    secret = text.rsplit(".", 1)[1]
    with RecordingProxy(str(plane.gateways[0].ready["tcp"])) as proxy:
        collector = Collector(
            tmp_path,
            "edge-observed-enroll",
            [f"tcp://{proxy.address()}"],
            PASSWORD,
            zone="",
            extra_args=["--enrollment-token-file", str(token_file(tmp_path, text))],
            access_key_file=plane.access_key_file,
        ).start()
        try:
            collector.wait_state("enabled")
        finally:
            collector.stop()
        recorded = proxy.recorded()
    assert len(recorded) > 500  # a handshake and a Hello did cross
    for clear in (text, secret, EnrollmentToken.parse(text).token_id, "outpost-et1"):
        assert clear.encode() not in recorded, f"{clear!r} crossed the wire in clear"
