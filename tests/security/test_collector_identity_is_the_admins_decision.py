"""A collector's name and zone are what the admin registered, never what its hello says.

The attack: `edge-a` registered in zone `lab`, restarted with the same data directory and
`--zone prod`, showed up as `edge-a prod enabled online` and then claimed prod's runs,
wrote prod's inventory and had prod's credentials sealed to it. Now the registry refuses
such a hello, naming both zones, keeps the zone on record, and the gateway routes by the
registry's answer only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from outpost.registry.v1 import registry_pb2
from tests.integration.test_registry_support import (
    ACCEPTED,
    REFUSED,
    R,
    announce,
    get,
    register,
    running_registry,
    watching,
)
from tests.process_harness import Collector, ControlPlane, wait_for

PASSWORD = "correct horse battery staple"


def _entry(plane: ControlPlane, name: str) -> dict[str, Any]:
    [entry] = [c for c in plane.collectors() if c["name"] == name]
    return entry


def _refusal_logged(collector: Collector, *needles: str) -> dict[str, Any] | None:
    for event in collector.log_events():
        message = str(event.get("message", ""))
        if event.get("event") == "reconnect_needs_operator" and all(n in message for n in needles):
            return event
    return None


def _register(plane: ControlPlane, collector: Collector) -> None:
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


def test_registered_collector_restarted_in_another_zone_is_refused_and_keeps_its_zone(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    collector = Collector(tmp_path, "edge-a", [control_plane.url("grpc")], PASSWORD, zone="lab").start()
    try:
        collector.wait_state("pending")
        _register(control_plane, collector)
        collector.wait_state("enabled")
        collector.stop()

        collector.zone = "prod"
        collector.restart()
        refused = wait_for(
            lambda: _refusal_logged(collector, "zone 'lab'", "'prod'"), what="the zone move refused in the log"
        )
        assert "an admin decides zones" in refused["message"]

        entry = _entry(control_plane, "edge-a")
        assert (entry["zone"], entry["state"]) == ("lab", "enabled")
        assert not entry["online"]
        explain = control_plane.ctl("collectors", "explain", "edge-a", "--json", check=False)
        assert explain.returncode == 3  # not live
        explained = json.loads(explain.stdout)
        findings = [f for f in explained["findings"] if f["code"] == "identity_changed"]
        assert findings, explained
        assert "zone 'lab'" in findings[0]["message"] and "'prod'" in findings[0]["message"]
        assert not explained["live"]

        collector.stop()
        collector.zone = "lab"  # put back as registered: it is itself again
        collector.restart()
        collector.wait_state("enabled")
        assert _entry(control_plane, "edge-a")["zone"] == "lab"
    finally:
        collector.stop()


def test_registered_collector_restarted_under_another_name_is_refused_and_keeps_its_name(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    original = Collector(tmp_path, "edge-a", [control_plane.url("grpc")], PASSWORD, zone="lab").start()
    renamed = Collector(
        tmp_path,
        "edge-b",
        [control_plane.url("grpc")],
        PASSWORD,
        zone="lab",
        extra_args=["--data-dir", str(original.data_dir)],  # the same key pair and identity
    )
    try:
        original.wait_state("pending")
        _register(control_plane, original)
        original.wait_state("enabled")
        original.stop()

        renamed.start()
        wait_for(lambda: _refusal_logged(renamed, "'edge-a'", "'edge-b'"), what="the name change refused in the log")
        assert [c["name"] for c in control_plane.collectors()] == ["edge-a"]
        assert _entry(control_plane, "edge-a")["zone"] == "lab"
    finally:
        renamed.stop()
        original.stop()


# --- the registry's decision, in-process on both databases --------------------------------
async def test_known_collector_naming_another_zone_is_refused_with_both_zones_and_keeps_its_own(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-a", zone="lab")
        await register(registry, "edge-a")
        collector.zone = "prod"

        response = await collector.authenticate(registry)

        assert response.decision == REFUSED
        assert response.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert "collector 'edge-a' is registered in zone 'lab'; this hello says 'prod'" in response.message
        assert "an admin decides zones" in response.message
        assert (await get(registry, "edge-a")).zone == "lab"
        explained = await registry.stub.ExplainCollector(registry_pb2.ExplainCollectorRequest(name="edge-a"))
        [finding] = [f for f in explained.findings if f.code == "identity_changed"]
        assert "'prod'" in finding.message and "remove" in finding.advice


async def test_known_collector_naming_another_name_is_refused_and_no_second_collector_appears(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-a", zone="lab")
        await register(registry, "edge-a")
        collector.name = "edge-b"

        response = await collector.authenticate(registry)

        assert response.decision == REFUSED
        assert "collector 'edge-a' is registered under the name 'edge-a'; this hello says 'edge-b'" in response.message
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert [(c.name, c.zone) for c in listed.collectors] == [("edge-a", "lab")]
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await get(registry, "edge-b")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_pending_collector_keeps_the_zone_it_announced_first(database_url: str) -> None:
    """Pending identity is fixed at first contact: what the admin reviews is what they register."""
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-a", zone="lab")
        collector.zone = "prod"

        response = await collector.authenticate(registry)

        assert response.decision == REFUSED
        assert "announced itself in zone 'lab'; this hello says 'prod'" in response.message
        assert (await get(registry, "edge-a")).zone == "lab"


async def test_accepted_handshakes_and_watch_events_carry_the_registered_name_and_zone(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-a", zone="lab")
        async with watching(registry) as watch:
            # The first bookmark says the watch is live; a change before it is history the
            # watcher is assumed to have listed (a fresh watch starts at the newest revision).
            assert (await watch.next()).kind == registry_pb2.EVENT_KIND_BOOKMARK
            await register(registry, "edge-a")
            event = await watch.next_change()
            assert (event.name, event.zone) == ("edge-a", "lab")

        response = await collector.authenticate(registry)

        assert response.decision == ACCEPTED
        assert (response.name, response.zone) == ("edge-a", "lab")
