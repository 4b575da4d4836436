"""Sealed sessions on the wire (issue 11 items 2 and 3, ADR 0019), attacked as on a real network.

An observer and an active attacker sit on the path as a relay (`RecordingProxy`) between
a real collector and a real gateway; a second control plane plays a gateway with another
static key; collectors come with no access key, a revoked one, an unknown one, one bound
to another zone. The run's "network" is loopback listeners on 127.0.0.61-63 whose banner
carries a canary string.

One control plane per module on SQLite (what is attacked is the wire, not the database;
the registry's access-key rules run on PostgreSQL too in the access-key tests). Its
gateway counts a check-in minute as one second, so polling collectors poll every second.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from outpost.access_key import AccessKey, read_access_key_file, write_access_key_file
from outpost.agent.v1 import agent_pb2
from outpost.session.codec import FrameDecoder, encode_frame
from outpost.session.handshake import fingerprint
from tests.peers.greeters import Greeters
from tests.peers.recording_proxy import RecordingProxy, Tamper
from tests.process_harness import Collector, ControlPlane, wait_for

pytestmark = pytest.mark.timeout(300)

R = agent_pb2.DisconnectReason
PASSWORD = "sealed-sessions-password"
CANARY = "CANARY-7f3a9c-banner-should-never-cross-the-wire-in-clear"
HOSTS = ["127.0.0.61", "127.0.0.62", "127.0.0.63"]
TARGETS = "127.0.0.61-127.0.0.63"
PORT_ATTEMPTS = 20
URL_PATHS = {"tcp": "tcp://{}", "websocket": "ws://{}/v1/agent", "http_poll": "http://{}/v1/poll"}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    directory = tmp_path_factory.mktemp("sealed")
    control = ControlPlane(
        directory / "server",
        f"sqlite+aiosqlite:///{directory / 'outpost.db'}",
        gateway_args=["--check-minute-seconds", "1"],
    ).start()
    control.ctl("config", "set", "collector_check_minutes", "1")
    try:
        yield control
    finally:
        control.stop()


@dataclass(frozen=True)
class Canaries:
    """Greeters on every host of the run's "network", all on one port the kernel chose free."""

    hosts: list[str]
    port: int


def _greeters_on_one_free_port() -> tuple[Greeters, int]:
    """The first host gets a port from the kernel; the others take the same one, or all retry.

    A fixed port collides with another run of this file on the same machine; the same
    port on every host keeps the discovery to one `--ports` value.
    """
    for _ in range(PORT_ATTEMPTS):
        greeters = Greeters()
        port = greeters.greeter(HOSTS[0], f"220 {CANARY} {HOSTS[0]} ESMTP\r\n".encode())
        try:
            for host in HOSTS[1:]:
                greeters.greeter(host, f"220 {CANARY} {host} ESMTP\r\n".encode(), port=port)
        except OSError:
            greeters.close()
            continue
        return greeters, port
    raise RuntimeError(f"no port free on all of {HOSTS} in {PORT_ATTEMPTS} attempts")


@pytest.fixture(scope="module")
def canaries() -> Iterator[Canaries]:
    greeters, port = _greeters_on_one_free_port()
    try:
        yield Canaries(HOSTS, port)
    finally:
        greeters.close()


def gateway_address(plane: ControlPlane, transport: str) -> str:
    ready = plane.gateways[0].ready
    return str(ready["websocket" if transport == "http_poll" else transport])


def register(plane: ControlPlane, collector: Collector) -> None:
    collector.wait_state("pending")
    plane.ctl(
        "collectors",
        "register",
        collector.name,
        "--username",
        collector.username,
        "--password-stdin",
        "--enable",
        stdin=PASSWORD + "\n",
    )
    collector.wait_state("enabled")


def run_discovery(plane: ControlPlane, name: str, collector: str, port: int) -> dict[str, object]:
    plane.ctl(
        "discoveries",
        "create",
        name,
        "--targets",
        TARGETS,
        "--ports",
        str(port),
        "--collector",
        collector,
        "--probes",
        "tcp,banners",
    )
    summary: dict[str, object] = json.loads(plane.ctl("discoveries", "run", name, "--wait", "--json").stdout)
    return summary


def devices_of(plane: ControlPlane) -> dict[str, dict[str, object]]:
    return {d["ip"]: d for d in json.loads(plane.ctl("devices", "list", "--json").stdout)}


def events(collector_or_log: list[dict[str, object]], event: str) -> list[dict[str, object]]:
    return [e for e in collector_or_log if e.get("event") == event]


def metric(plane: ControlPlane, name: str, **labels: str) -> float:
    text = urllib.request.urlopen(f"http://{plane.gateway_ready['metrics']}/metrics", timeout=5).read().decode()
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}\{{{re.escape(selector)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def write_key(path: Path, key: AccessKey) -> Path:
    write_access_key_file(path, key)
    return path


def create_access_key(plane: ControlPlane, name: str, *extra: str) -> AccessKey:
    created = json.loads(plane.ctl("access-keys", "create", name, *extra, "--json").stdout)
    return AccessKey.parse(created["access_key"])


def nothing_stored_of(plane: ControlPlane, name: str) -> None:
    """No registry row, no pending entry: the collector never reached the registry."""
    assert name not in {c["name"] for c in plane.collectors()}


# --- an observer on the path ------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "websocket", "http_poll"])
def test_a_recorded_session_shows_neither_banners_nor_targets_nor_the_collectors_name(
    plane: ControlPlane, canaries: Canaries, tmp_path: Path, transport: str
) -> None:
    name = f"edge-observed-{transport.replace('_', '-')}"
    with RecordingProxy(gateway_address(plane, transport)) as proxy:
        url = URL_PATHS[transport].format(proxy.address())
        collector = Collector(tmp_path, name, [url], PASSWORD, access_key_file=plane.access_key_file).start()
        try:
            register(plane, collector)
            summary = run_discovery(plane, f"observed-{transport}", name, canaries.port)
            assert summary["state"] == "succeeded", summary
        finally:
            collector.stop()
        recorded = proxy.recorded()
    stored = devices_of(plane)
    assert set(canaries.hosts) <= set(stored) and CANARY in json.dumps(
        [stored[h] for h in canaries.hosts]
    )  # it did cross
    assert len(recorded) > 2000  # a whole session: handshake, hello, job, results, heartbeats
    for secret in [CANARY, TARGETS, *canaries.hosts, name, PASSWORD, collector.username]:
        assert secret.encode() not in recorded, f"{secret!r} crossed the wire in clear"


# --- an active attacker on the path -------------------------------------------------------


@pytest.mark.parametrize("attack", ["flip", "replay", "reorder"])
def test_an_altered_replayed_or_reordered_frame_closes_the_session_and_the_run_still_finishes(
    plane: ControlPlane, canaries: Canaries, tmp_path: Path, attack: Tamper
) -> None:
    name = f"edge-tampered-{attack}"
    failures_before = metric(plane, "outpost_gateway_sealed_failures_total", cause="record_authentication_failed")
    # Armed just before the run, the next collector frame of 200 bytes or more is its first
    # result batch (heartbeats and job updates are smaller).
    with RecordingProxy(gateway_address(plane, "tcp"), tamper=attack, min_bytes=200) as proxy:
        collector = Collector(
            tmp_path, name, [f"tcp://{proxy.address()}"], PASSWORD, access_key_file=plane.access_key_file
        ).start()
        try:
            register(plane, collector)
            proxy.arm()
            summary = run_discovery(plane, f"tampered-{attack}", name, canaries.port)
            assert proxy.tampered.is_set()
            assert summary["state"] == "succeeded", summary
            log = collector.log_events()
        finally:
            collector.stop()
    closed = [e for e in events(log, "session_closed") if e.get("reason") == "DISCONNECT_REASON_MALFORMED_FRAME"]
    assert closed and closed[0]["by_server"] is True, events(log, "session_closed")
    assert len(events(log, "session_accepted")) >= 2  # it reconnected and finished there
    gateway_log = plane.gateways[0].log_events()
    failed = events(gateway_log, "sealed_record_failed")
    assert any(e["cause"] == "record_authentication_failed" for e in failed), failed
    assert (
        metric(plane, "outpost_gateway_sealed_failures_total", cause="record_authentication_failed") > failures_before
    )
    # What the tampered session carried was never acted on; the resend after the reconnect
    # was stored once: one device per target, each with its one open port.
    stored = devices_of(plane)
    assert all(stored[h]["open_ports"] == [canaries.port] for h in canaries.hosts)


# --- who may talk to the gateway at all -------------------------------------------------------


def test_a_collector_without_an_access_key_refuses_to_start(plane: ControlPlane, tmp_path: Path) -> None:
    collector = Collector(tmp_path, "edge-keyless", [plane.url("tcp")], PASSWORD, access_key_file=False).start()
    assert collector.process is not None
    wait_for(lambda: not collector.alive(), timeout=30, what="the collector exits at start")
    assert collector.stop() == 2
    assert "no access key" in collector.process.log()


def test_a_collector_from_before_sealing_is_refused_in_clear_and_leaves_no_pending_entry(plane: ControlPlane) -> None:
    import socket

    host, port = plane.gateway_ready["tcp"].rsplit(":", 1)
    hello = agent_pb2.CollectorMessage(
        sequence=1, hello=agent_pb2.Hello(protocol_version=1, name="edge-legacy", instance_uid="uid-legacy")
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(encode_frame(hello.SerializeToString()))
        decoder, frames = FrameDecoder(1 << 20), []
        while not frames:
            data = sock.recv(65536)
            assert data, "the gateway closed without a word"
            frames = decoder.feed(data)
    disconnect = agent_pb2.ServerMessage.FromString(frames[0]).disconnect
    assert disconnect.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED
    assert "sealed" in disconnect.message and "--access-key-file" in disconnect.message
    nothing_stored_of(plane, "edge-legacy")


@pytest.mark.parametrize("case", ["revoked", "unknown"])
def test_a_revoked_or_unknown_access_key_is_refused_at_the_handshake_and_nothing_is_stored(
    plane: ControlPlane, tmp_path: Path, case: str
) -> None:
    name = f"edge-{case}-key"
    refusals_before = metric(plane, "outpost_gateway_handshake_refusals_total", reason="unknown_access_key")
    if case == "revoked":
        key = create_access_key(plane, f"site-{case}")
        plane.ctl("access-keys", "revoke", f"site-{case}")
    else:
        real = read_access_key_file(plane.access_key_file)
        key = AccessKey("ak_" + secrets.token_hex(8), secrets.token_bytes(32), real.server_public_key)
    key_file = write_key(tmp_path / f"{case}.key", key)
    collector = Collector(tmp_path, name, [plane.url("tcp")], PASSWORD, access_key_file=key_file).start()
    try:
        refused = wait_for(
            lambda: events(collector.log_events(), "handshake_refused"), timeout=30, what="a refused handshake"
        )
    finally:
        collector.stop()
    assert refused[0]["reason"] == "DISCONNECT_REASON_ACCESS_KEY_REFUSED"
    assert key.key_id in str(refused[0]["message"])
    assert metric(plane, "outpost_gateway_handshake_refusals_total", reason="unknown_access_key") > refusals_before
    nothing_stored_of(plane, name)


def test_a_zone_bound_access_key_admits_its_zone_only(plane: ControlPlane, tmp_path: Path) -> None:
    key_file = write_key(tmp_path / "dmz.key", create_access_key(plane, "site-dmz", "--zone", "dmz"))
    elsewhere = Collector(
        tmp_path, "edge-wrong-zone", [plane.url("websocket")], PASSWORD, zone="lab", access_key_file=key_file
    ).start()
    try:
        refused = wait_for(
            lambda: events(elsewhere.log_events(), "session_closed"), timeout=30, what="the zone refusal"
        )
    finally:
        elsewhere.stop()
    assert refused[0]["reason"] == "DISCONNECT_REASON_ACCESS_KEY_REFUSED"
    assert "'dmz'" in str(refused[0]["message"]) and "'lab'" in str(refused[0]["message"])
    nothing_stored_of(plane, "edge-wrong-zone")
    inside = Collector(
        tmp_path, "edge-dmz", [plane.url("websocket")], PASSWORD, zone="dmz", access_key_file=key_file
    ).start()
    try:
        inside.wait_state("pending")
    finally:
        inside.stop()


# --- the server's identity ---------------------------------------------------------------------


def test_first_contact_pins_the_server_key_and_a_gateway_with_another_key_is_refused(
    plane: ControlPlane, tmp_path: Path
) -> None:
    real = read_access_key_file(plane.access_key_file)
    unpinned = write_key(tmp_path / "unpinned.key", AccessKey(real.key_id, real.secret))
    collector = Collector(tmp_path, "edge-tofu", [plane.url("grpc")], PASSWORD, access_key_file=unpinned).start()
    server_key = fingerprint(real.server_public_key or b"")
    try:
        collector.wait_state("pending")
        pinned = wait_for(
            lambda: events(collector.log_events(), "server_key_pinned"), timeout=30, what="the pin is logged"
        )
    finally:
        collector.stop()
    assert pinned[0]["fingerprint"] == server_key
    pin_file = collector.data_dir / "server.pin"
    assert pin_file.stat().st_mode & 0o777 == 0o600 and server_key in pin_file.read_text()

    # The same collector, pointed at another server's gateway (its own registry, its own key):
    other = ControlPlane(tmp_path / "other-server", f"sqlite+aiosqlite:///{tmp_path / 'other.db'}").start()
    try:
        collector.servers = [other.url("grpc")]
        collector.start()
        mismatch = wait_for(
            lambda: events(collector.log_events(), "server_key_mismatch"), timeout=30, what="the pinned refusal"
        )
        assert mismatch[0]["message"] == (
            f"the server could not prove the pinned key {server_key}, refusing (relaying or impersonating gateway?)"
        )
        assert not events(collector.log_events(), "server_key_pinned")[1:]  # never re-pinned
        collector.stop()
        assert other.collectors() == []
    finally:
        other.stop()


def test_with_first_contact_off_only_a_collector_that_holds_the_server_key_gets_in(
    plane: ControlPlane, tmp_path: Path
) -> None:
    strict = plane.add_gateway(args=["--no-allow-first-contact"])
    index = plane.gateways.index(strict)
    real = read_access_key_file(plane.access_key_file)
    unpinned = write_key(tmp_path / "unpinned.key", AccessKey(real.key_id, real.secret))
    refused_collector = Collector(
        tmp_path, "edge-first-contact", [plane.url("http_poll", gateway=index)], PASSWORD, access_key_file=unpinned
    ).start()
    try:
        refused = wait_for(
            lambda: events(refused_collector.log_events(), "handshake_refused"),
            timeout=30,
            what="first contact refused",
        )
    finally:
        refused_collector.stop()
    assert refused[0]["reason"] == "DISCONNECT_REASON_ACCESS_KEY_REFUSED"
    assert "first contact" in str(refused[0]["message"])
    assert not (refused_collector.data_dir / "server.pin").exists()
    nothing_stored_of(plane, "edge-first-contact")

    holder = Collector(
        tmp_path,
        "edge-holds-key",
        [plane.url("http_poll", gateway=index)],
        PASSWORD,
        access_key_file=plane.access_key_file,
    ).start()
    try:
        holder.wait_state("pending")
    finally:
        holder.stop()
        strict.terminate()
