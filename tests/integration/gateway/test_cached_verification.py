"""Gateways verify known collectors from their watched cache (issue 13 item 1, ADR 0034).

Real processes: registry, scheduler, gateway, collectors. Whether the registry decided a
handshake is read from its own counter (`outpost_registry_authentications_total`: one per
AuthenticateCollector it answered); whether the gateway decided it from its cache, from the
gateway's (`outpost_gateway_handshakes_verified_locally_total`).

Where the gateway's path to the registry must break while the registry itself stays up
(the admin's change has to be made meanwhile), the gateway reaches the registry through a
TCP relay in this test that can be frozen (connections stay open, nothing passes: a watch
that hears no bookmark) or cut (every connection closed, new ones refused: a watch gap).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_discovery_flow import enabled_collector
from tests.process_harness import BIN, Collector, ControlPlane, wait_for

STALENESS = 2.0
"""The gateways' --collector-cache-max-staleness here; the registry bookmarks every 0.5 s."""
NEW_PASSWORD = "the-rotated-Pa55word-cache"


class Relay:
    """A TCP relay from a local port to `upstream` that can be frozen, cut and restored."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.flowing = threading.Event()
        self.flowing.set()
        self.refusing = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def freeze(self) -> None:
        """Connections stay open; nothing passes either way."""
        self.flowing.clear()

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self.refusing = True
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.flowing.set()

    def restore(self) -> None:
        self.refusing = False
        self.flowing.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def relayed(tmp_path: Path, database_url: str) -> Iterator[tuple[ControlPlane, Relay]]:
    plane = ControlPlane(
        tmp_path / "server",
        database_url,
        gateway_count=0,
        registry_args=["--watch-bookmark-interval", "0.5"],
        gateway_args=["--collector-cache-max-staleness", str(STALENESS)],
    ).start()
    relay = Relay(plane.registry_ready["grpc"])
    try:
        plane.add_gateway(args=["--registry", relay.address])
        yield plane, relay
    finally:
        relay.close()
        plane.stop()


def metric(address: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples (those with `labels`), 0 when it has none yet."""
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{[^}}]*\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def registry_decisions(plane: ControlPlane) -> float:
    return metric(plane.registry_ready["metrics"], "outpost_registry_authentications_total")


def local_admissions(plane: ControlPlane) -> float:
    return metric(plane.gateway_ready["metrics"], "outpost_gateway_handshakes_verified_locally_total")


def cached(plane: ControlPlane) -> float:
    return metric(plane.gateway_ready["metrics"], "outpost_gateway_collector_cache_entries")


def show(plane: ControlPlane, name: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(plane.ctl("collectors", "show", name, "--json").stdout)
    return record


def events(collector: Collector, name: str) -> list[dict[str, Any]]:
    return [e for e in collector.log_events() if e.get("event") == name]


def reconnect(collector: Collector, state: str = "enabled") -> str:
    """Restart the collector process; the id of its new session once it is in `state`."""
    before = collector.status().get("session_id")
    collector.stop()
    collector.restart()
    status = collector.wait_status(
        lambda s: s.get("state") == state and s.get("session_id") not in (None, before), what=f"a new {state} session"
    )
    return str(status["session_id"])


def test_a_known_collector_is_admitted_by_the_gateway_alone_and_disable_and_removal_reach_its_cache(
    relayed: tuple[ControlPlane, Relay], tmp_path: Path
) -> None:
    plane, _ = relayed
    collector = enabled_collector(plane, tmp_path, "edge-cache", transport="tcp")
    try:
        wait_for(lambda: cached(plane) >= 1, timeout=10, what="the registration to reach the gateway's cache")
        # The first handshake after registration proves the password the registration adopted:
        # the registry records that (and the gateway learns it from its answer), once.
        reconnect(collector)
        assert show(plane, "edge-cache")["password_last_proved"] == "current"
        decided, local = registry_decisions(plane), local_admissions(plane)

        reconnect(collector)
        assert registry_decisions(plane) == decided, "the registry was asked about a known collector"
        assert local_admissions(plane) == local + 1
        # The registry still learns where the collector is, from the batched session report.
        wait_for(lambda: show(plane, "edge-cache")["connected"], timeout=10, what="the report of the new session")

        # Disabled: the live session follows within a second, and the next handshake is
        # admitted from the cache in the disabled state, as the registry would.
        plane.ctl("collectors", "disable", "edge-cache", "--reason", "maintenance")
        collector.wait_state("disabled", timeout=5)
        wait_for(lambda: cached(plane) >= 1, timeout=10, what="the disabled collector read again")
        reconnect(collector, "disabled")
        assert registry_decisions(plane) == decided
        assert local_admissions(plane) == local + 2

        # Removed: dropped from the cache; its next handshake is a first contact for the registry.
        plane.ctl("collectors", "remove", "edge-cache", "--reason", "decommissioned")
        wait_for(lambda: cached(plane) == 0, timeout=5, what="the removal to reach the cache")
        collector.wait_state("pending", timeout=15)
        assert registry_decisions(plane) > decided
        assert local_admissions(plane) == local + 2
    finally:
        collector.stop()


def test_a_gateway_whose_watch_is_behind_refuses_and_after_the_gap_learns_the_change_by_resync(
    relayed: tuple[ControlPlane, Relay], tmp_path: Path
) -> None:
    plane, relay = relayed
    gateway = plane.gateways[0]
    collector = enabled_collector(plane, tmp_path, "edge-gap", transport="tcp")
    try:
        wait_for(lambda: cached(plane) >= 1, timeout=10, what="the registration to reach the gateway's cache")
        local = local_admissions(plane)
        resyncs = len([e for e in gateway.log_events() if e.get("event") == "collector_cache_resynced"])

        # The watch hears nothing (no bookmark): the cache is stale, the registry does not
        # answer either, so the collector is refused with a retry-after, not admitted.
        relay.freeze()
        wait_for(
            lambda: metric(plane.gateway_ready["metrics"], "outpost_gateway_collector_cache_fresh") == 0,
            timeout=STALENESS + 5,
            what="the cache to go stale",
        )
        collector.stop()
        mark = len(collector.log_events())
        collector.restart()
        refused = wait_for(
            lambda: [
                e
                for e in collector.log_events()[mark:]
                if e.get("event") == "session_closed" and e.get("reason") == "DISCONNECT_REASON_UNAVAILABLE"
            ],
            timeout=20,
            what="a refusal while the watch is behind",
        )
        assert refused[0]["retry_after"] > 0, refused[0]
        assert collector.status().get("state") != "enabled"
        assert local_admissions(plane) == local
        assert metric(plane.gateway_ready["metrics"], "outpost_gateway_handshakes_deferred_total", reason="stale") >= 1

        # A gap: the gateway's connections to the registry are cut; meanwhile an admin disables it.
        relay.cut()
        plane.ctl("collectors", "disable", "edge-gap", "--reason", "while the gateway was cut off")
        assert collector.status().get("state") != "enabled"
        relay.restore()

        # Back: the watch resyncs, and the collector is admitted only as disabled.
        collector.wait_state("disabled", timeout=30)
        since = collector.log_events()[mark:]
        changes = [e.get("state") for e in since if e.get("event") == "collector_state_changed"]
        assert "enabled" not in changes, changes
        wait_for(
            lambda: len([e for e in gateway.log_events() if e.get("event") == "collector_cache_resynced"]) > resyncs,
            timeout=10,
            what="the resync after the gap",
        )
    finally:
        collector.stop()


def test_a_password_overlap_is_honoured_from_the_cache(relayed: tuple[ControlPlane, Relay], tmp_path: Path) -> None:
    """During the overlap the gateway admits both passwords alone, once the registry has
    recorded which one was proved.

    What happens after the overlap is not waited for here: the gateway never accepts an
    expired previous password (tests/unit/gateway/test_local_verification.py,
    `test_everything_the_registry_would_refuse_is_left_to_the_registry`), so the registry
    decides, and its refusal is tests/e2e/test_service_password.py's (with the exact message).
    """
    plane, _ = relayed
    collector = enabled_collector(plane, tmp_path, "edge-creds", transport="tcp")
    try:
        wait_for(lambda: cached(plane) >= 1, timeout=10, what="the registration to reach the gateway's cache")
        new_file = tmp_path / "new.password"
        new_file.write_text(NEW_PASSWORD + "\n")
        # Long enough for four collector restarts on a loaded machine; nothing waits for its end.
        plane.ctl("collectors", "set-password", "edge-creds", "--password-file", str(new_file), "--overlap", "600s")

        # The old password during the overlap: the registry records the switch to the previous
        # credential once; after that the gateway admits it alone.
        reconnect(collector)
        wait_for(lambda: show(plane, "edge-creds")["password_last_proved"] == "previous", timeout=5, what="slot")
        decided, local = registry_decisions(plane), local_admissions(plane)
        reconnect(collector)
        assert (registry_decisions(plane), local_admissions(plane)) == (decided, local + 1)

        # The new password: the same, for the current credential.
        collector.password = NEW_PASSWORD
        reconnect(collector)
        assert show(plane, "edge-creds")["password_last_proved"] == "current"
        decided, local = registry_decisions(plane), local_admissions(plane)
        reconnect(collector)
        assert (registry_decisions(plane), local_admissions(plane)) == (decided, local + 1)
    finally:
        collector.stop()


def test_a_collector_key_rotation_reaches_the_cache(relayed: tuple[ControlPlane, Relay], tmp_path: Path) -> None:
    plane, _ = relayed
    collector = enabled_collector(plane, tmp_path, "edge-key", transport="tcp")
    try:
        wait_for(lambda: cached(plane) >= 1, timeout=10, what="the registration to reach the gateway's cache")
        reconnect(collector)  # the first proof after registration is the registry's to record
        # The collector replaces its identity key inside its session: the cache learns the new key.
        # That the old key is then refused (by the registry: the gateway never refuses) is
        # tests/e2e/test_rotation.py's
        # `test_a_collector_key_rotation_keeps_the_live_session_and_the_old_key_is_refused_after`.
        subprocess.run(
            [str(BIN / "outpost-collector"), "rotate-key", "--data-dir", str(collector.data_dir)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        gateway = plane.gateways[0]
        reads = len([e for e in gateway.log_events() if e.get("event") == "collector_cache_read"])
        wait_for(lambda: events(collector, "key_rotated"), timeout=15, what="the accepted rotation")
        new_fingerprint = show(plane, "edge-key")["fingerprint"]
        wait_for(
            lambda: len([e for e in gateway.log_events() if e.get("event") == "collector_cache_read"]) > reads,
            timeout=10,
            what="the gateway to read the rotated key (CREDENTIALS_CHANGED)",
        )
        decided, local = registry_decisions(plane), local_admissions(plane)
        reconnect(collector)
        assert collector.status()["fingerprint"] == new_fingerprint
        assert (registry_decisions(plane), local_admissions(plane)) == (decided, local + 1)
    finally:
        collector.stop()
