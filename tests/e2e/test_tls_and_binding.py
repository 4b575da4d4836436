"""TLS on every agent listener; a collector stays bound to its first server instance; a
second collector cannot take a registered name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.process_harness import Collector, ControlPlane, wait_for
from tests.tls_certs import make_pki


def _sqlite_plane(directory: Path, **start: object) -> ControlPlane:
    return ControlPlane(directory, f"sqlite+aiosqlite:///{directory / 'outpost.db'}").start(**start)  # type: ignore[arg-type]


@pytest.fixture
def tls_plane(tmp_path: Path) -> Iterator[tuple[ControlPlane, Path]]:
    pki = make_pki(tmp_path / "pki")
    plane = _sqlite_plane(tmp_path / "server", tls=(pki.cert_file, pki.key_file))
    try:
        yield plane, pki.ca_file
    finally:
        plane.stop()


@pytest.mark.parametrize("transport", ["grpc", "websocket", "tcp"])
def test_collector_connects_over_tls_and_refuses_an_unknown_ca(
    tls_plane: tuple[ControlPlane, Path], tmp_path: Path, transport: str
) -> None:
    plane, ca_file = tls_plane
    trusted = Collector(
        tmp_path, f"tls-{transport}", [plane.url(transport, tls=True)], "pw", extra_args=["--ca-file", str(ca_file)]
    ).start()
    try:
        trusted.wait_state("pending")
    finally:
        trusted.stop()
    other_ca = make_pki(tmp_path / "other-pki").ca_file
    untrusting = Collector(
        tmp_path,
        f"untrusting-{transport}",
        [plane.url(transport, tls=True)],
        "pw",
        extra_args=["--ca-file", str(other_ca)],
    ).start()
    try:
        wait_for(
            lambda: any(
                e.get("event") in ("connection_failed", "session_closed") for e in untrusting.process.log_events()
            ),
            what="TLS failure logged",
        )  # type: ignore[union-attr]
        assert untrusting.status().get("state") != "pending"
        assert all(c["name"] != untrusting.name for c in plane.collectors())
    finally:
        untrusting.stop()


def test_collector_bound_to_one_instance_is_refused_by_another_naming_both(tmp_path: Path) -> None:
    first = _sqlite_plane(tmp_path / "first")
    second = _sqlite_plane(tmp_path / "second")
    collector = Collector(tmp_path, "edge-bound", [first.url("grpc")], "pw")
    try:
        collector.start()
        status = collector.wait_state("pending")
        first_instance = first.registry_ready["server_instance"]
        assert status["server_instance"] == first_instance
        collector.stop()

        collector.servers = [second.url("grpc")]
        collector.start()
        second_instance = second.registry_ready["server_instance"]
        refusal = wait_for(
            lambda: next(
                (
                    e
                    for e in collector.process.log_events()
                    if e.get("reason") == "DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE"
                ),
                None,
            ),  # type: ignore[union-attr]
            what="refusal logged",
        )
        assert first_instance in refusal["message"] and second_instance in refusal["message"]
        assert second.collectors() == []
    finally:
        collector.stop()  # a failed wait must not leave it running (it outlived a failing run once)
        first.stop()
        second.stop()


def test_second_key_claiming_a_registered_name_is_refused_and_shown_to_admins(tmp_path: Path) -> None:
    plane = _sqlite_plane(tmp_path / "server")
    try:
        original = Collector(tmp_path / "a", "edge-shared", [plane.url("tcp")], "pw").start()
        original.wait_state("pending")
        (tmp_path / "pw").write_text("pw\n")
        plane.ctl(
            "collectors",
            "register",
            "edge-shared",
            "--username",
            original.username,
            "--password-file",
            str(tmp_path / "pw"),
            "--enable",
        )
        original.wait_state("enabled")

        impostor = Collector(tmp_path / "b", "edge-shared", [plane.url("tcp")], "pw").start()
        wait_for(
            lambda: any(e.get("reason") == "DISCONNECT_REASON_NAME_CONFLICT" for e in impostor.process.log_events()),  # type: ignore[union-attr]
            what="impostor refused",
        )
        conflicts = json.loads(plane.ctl("collectors", "conflicts", "--json").stdout)
        assert [c["name"] for c in conflicts] == ["edge-shared"]
        entries = plane.collectors()
        assert len(entries) == 1 and entries[0]["state"] == "enabled"
        assert entries[0]["fingerprint"] == original.status()["fingerprint"]
        assert conflicts[0]["fingerprint"] != entries[0]["fingerprint"]
        assert original.status()["state"] == "enabled"
        impostor.stop()
        original.stop()
    finally:
        plane.stop()
