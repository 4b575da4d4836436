"""ExplainCollector over the real server, and the bounded record of refused handshakes."""

from __future__ import annotations

from datetime import UTC, timedelta

import grpc
import pytest

from outpost.registry.v1 import registry_pb2
from services.registry.store import status
from tests.integration.test_registry_support import (
    REFUSED,
    FakeCollector,
    ManualClock,
    RunningRegistry,
    announce,
    register,
    running_registry,
)

INTERVAL = 30


async def explain(registry: RunningRegistry, name: str) -> registry_pb2.ExplainCollectorResponse:
    response: registry_pb2.ExplainCollectorResponse = await registry.stub.ExplainCollector(
        registry_pb2.ExplainCollectorRequest(name=name)
    )
    return response


def codes(response: registry_pb2.ExplainCollectorResponse) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in response.findings]


def finding(response: registry_pb2.ExplainCollectorResponse, code: str) -> registry_pb2.Finding:
    found = [f for f in response.findings if f.code == code]
    assert len(found) == 1, codes(response)
    return found[0]


async def refusal_count(registry: RunningRegistry) -> int:
    async with registry.server.store.read() as tx:
        return await tx.refusal_count()


async def live_collector(registry: RunningRegistry, name: str) -> FakeCollector:
    collector = await announce(registry, name)
    await register(registry, name, enable=True)
    return collector


async def test_a_connected_enabled_collector_is_live(database_url: str) -> None:
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=ManualClock()) as registry:
        await live_collector(registry, "edge-7")

        response = await explain(registry, "edge-7")

        assert response.live
        assert response.summary.startswith("edge-7 is live")
        assert ("live", "ok") in codes(response)
        assert "gateway gw-1 (grpc from 198.51.100.7:50123)" in finding(response, "live").message
        assert (response.collector.name, response.collector.online) == ("edge-7", True)


async def test_a_collector_nobody_reports_for_is_explained_as_offline(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        await live_collector(registry, "edge-7")
        clock.advance(2 * INTERVAL + 1)

        response = await explain(registry, "edge-7")

        offline = finding(response, "offline")
        assert not response.live
        assert offline.severity == "error"
        assert "that gateway last reported 61 s ago" in offline.message
        assert "gw-1" in offline.advice
        assert response.summary.startswith("edge-7 is not live: offline")


async def test_refused_handshakes_are_recorded_and_explain_why_a_collector_is_offline(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        collector = await live_collector(registry, "edge-7")
        clock.advance(2 * INTERVAL + 1)  # its session is gone ...
        reinstalled = FakeCollector("edge-7", instance_uid=collector.instance_uid)  # ... and it came back re-keyed
        for address in ("203.0.113.5:40000", "203.0.113.9:40001"):
            clock.advance(1)
            response = await reinstalled.authenticate(registry, remote_address=address)
            assert response.decision == REFUSED

        explained = await explain(registry, "edge-7")

        refused = finding(explained, "auth_refused")
        assert refused.severity == "error"
        assert "refused 2 times" in refused.message
        assert "from 203.0.113.9:40001" in refused.message
        assert "public key does not match" in refused.message
        assert refused.at.ToDatetime(tzinfo=UTC) == clock.now
        assert "outpostctl collectors remove edge-7" in refused.advice
        assert explained.summary == f"edge-7 is not live: {refused.message}"
        assert await refusal_count(registry) == 1  # one row per (name, identity, reason)


async def test_a_name_never_seen_is_explained_with_the_refusals_under_it(database_url: str) -> None:
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=ManualClock()) as registry:
        moved = FakeCollector("edge-9", bound_server_instance="another-server")
        assert (await moved.authenticate(registry, remote_address="192.0.2.4:5000")).decision == REFUSED

        response = await explain(registry, "edge-9")
        nobody = await explain(registry, "edge-10")

        assert not response.live
        assert codes(response) == [("never_connected", "error"), ("bound_elsewhere", "error")]
        assert "1 handshake under this name was refused" in finding(response, "never_connected").message
        assert "another-server" in finding(response, "bound_elsewhere").message
        assert not response.HasField("collector")
        assert codes(nobody) == [("never_connected", "error")]
        assert "--server" in nobody.findings[0].advice


async def test_a_name_conflict_is_a_warning_on_the_collector_holding_the_name(database_url: str) -> None:
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=ManualClock()) as registry:
        await live_collector(registry, "edge-7")
        newcomer = FakeCollector("edge-7")
        assert (await newcomer.authenticate(registry, remote_address="192.0.2.8:1234")).decision == REFUSED

        response = await explain(registry, "edge-7")

        conflict = finding(response, "name_conflict")
        assert response.live
        assert conflict.severity == "warning"
        assert newcomer.fingerprint in conflict.message
        assert "outpostctl collectors conflicts" in conflict.advice
        assert response.summary == f"edge-7 is live, but {conflict.message}"


async def test_pending_and_disabled_say_what_the_admin_must_do(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        await announce(registry, "edge-p")
        await live_collector(registry, "edge-d")
        disabled_at = clock.advance(5)
        async with registry.stub_as(await registry.token("bob", "operator")) as bob:
            await bob.DisableCollector(registry_pb2.DisableCollectorRequest(name="edge-d", reason="maintenance window"))

        pending = await explain(registry, "edge-p")
        disabled = await explain(registry, "edge-d")

        assert not pending.live
        assert pending.summary.startswith("edge-p is not live: pending")
        assert "outpostctl collectors register edge-p" in finding(pending, "pending").advice
        assert ("online", "info") in codes(pending)
        off = finding(disabled, "disabled")
        assert not disabled.live
        assert off.message == "disabled by bob 0 s ago: maintenance window"
        assert off.at.ToDatetime(tzinfo=UTC) == disabled_at
        assert "outpostctl collectors enable edge-d" in off.advice


async def test_an_empty_name_is_invalid(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await explain(registry, "  ")
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_refusals_are_bounded_in_number_and_age(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status, "MAX_REFUSALS", 3)
    clock = ManualClock()
    async with running_registry(database_url, clock=clock) as registry:
        for index in range(5):  # an attacker inventing identities
            clock.advance(1)
            stranger = FakeCollector(f"x-{index}", bound_server_instance="elsewhere")
            assert (await stranger.authenticate(registry)).decision == REFUSED
        kept = [name for name in (f"x-{i}" for i in range(5)) if len((await explain(registry, name)).findings) > 1]

        assert await refusal_count(registry) == 3
        assert kept == ["x-2", "x-3", "x-4"]  # the least recently refused went first

        clock.advance(timedelta(days=31).total_seconds())
        late = FakeCollector("late", bound_server_instance="elsewhere")
        assert (await late.authenticate(registry)).decision == REFUSED
        assert await refusal_count(registry) == 1
