"""ReportSessions and what `Collector.connected` shows people."""

from __future__ import annotations

from outpost.registry.v1 import registry_pb2
from tests.integration.test_registry_support import (
    RunningRegistry,
    announce,
    eventually,
    get,
    running_registry,
)


def session(instance_uid: str, session_id: str, *, connected: bool, last_error: str = "") -> registry_pb2.SessionReport:
    return registry_pb2.SessionReport(
        instance_uid=instance_uid,
        session_id=session_id,
        connected=connected,
        remote_address="198.51.100.20:7000",
        transport="tcp",
        last_error=last_error,
    )


async def report(
    registry: RunningRegistry,
    gateway_id: str,
    *sessions: registry_pb2.SessionReport,
    complete: bool = False,
) -> None:
    await registry.stub.ReportSessions(
        registry_pb2.ReportSessionsRequest(gateway_id=gateway_id, sessions=list(sessions), complete=complete)
    )


async def test_disconnect_of_an_older_session_does_not_clobber_a_newer_one(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        await collector.authenticate(registry, gateway_id="gw-1", session_id="old")
        # The collector fails over to gw-2 before gw-1 notices the old session died.
        await collector.authenticate(registry, gateway_id="gw-2", session_id="new")

        await report(registry, "gw-1", session(collector.instance_uid, "old", connected=False))

        still = await get(registry, "edge-7")
        assert still.connected
        assert still.gateway_id == "gw-2"

        await report(
            registry,
            "gw-2",
            session(collector.instance_uid, "new", connected=False, last_error="heartbeat timeout"),
        )

        assert not (await get(registry, "edge-7")).connected


async def test_connected_report_records_where_the_session_is(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        before = await get(registry, "edge-7")

        await report(registry, "gw-9", session(collector.instance_uid, "s-9", connected=True))

        after = await get(registry, "edge-7")
        assert after.connected
        assert (after.gateway_id, after.transport, after.remote_address) == (
            "gw-9",
            "tcp",
            "198.51.100.20:7000",
        )
        assert after.last_seen.ToDatetime() >= before.last_seen.ToDatetime()


async def test_complete_report_disconnects_only_that_gateways_unlisted_collectors(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        listed = await announce(registry, "a-listed")
        gone = await announce(registry, "b-gone")
        elsewhere = await announce(registry, "c-elsewhere")
        await listed.authenticate(registry, gateway_id="gw-1", session_id="s-a")
        await gone.authenticate(registry, gateway_id="gw-1", session_id="s-b")
        await elsewhere.authenticate(registry, gateway_id="gw-2", session_id="s-c")
        before = await get(registry, "a-listed")

        await report(registry, "gw-1", session(listed.instance_uid, "s-a", connected=True), complete=True)

        a, b, c = [await get(registry, n) for n in ("a-listed", "b-gone", "c-elsewhere")]
        assert a.connected and a.last_seen.ToDatetime() >= before.last_seen.ToDatetime()
        assert not b.connected
        assert c.connected and c.gateway_id == "gw-2"


async def test_an_empty_complete_report_disconnects_everything_on_that_gateway(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        await collector.authenticate(registry, gateway_id="gw-1")

        await report(registry, "gw-1", complete=True)

        assert not (await get(registry, "edge-7")).connected


async def test_collector_unseen_for_three_heartbeats_shows_disconnected(database_url: str) -> None:
    async with running_registry(database_url, heartbeat_interval=1) as registry:
        await announce(registry, "edge-7")
        assert (await get(registry, "edge-7")).connected

        async def disconnected() -> bool:
            return not (await get(registry, "edge-7")).connected

        # Nobody reports for it any more (say, its gateway was killed with -9).
        await eventually(disconnected, timeout=8.0, what="edge-7 to look disconnected")
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert [c.connected for c in listed.collectors] == [False]


async def test_reports_for_unknown_collectors_are_ignored(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        await report(
            registry,
            "gw-1",
            session("no-such-collector", "s", connected=True),
            session("nor-this-one", "s", connected=False, last_error="x"),
            complete=True,
        )
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert list(listed.collectors) == []
