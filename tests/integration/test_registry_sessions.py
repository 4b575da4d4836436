"""ReportSessions, and what `Collector.connected` and `Collector.online` show people.

`connected` is what a gateway last reported; `online` is computed at read time:
connected and heard from within two heartbeat intervals (ADR 0010). The registry's clock
is a `ManualClock`, so "two intervals later" takes no time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from outpost.agent.v1 import agent_pb2
from outpost.registry.v1 import registry_pb2
from tests.integration.test_registry_support import (
    ManualClock,
    RunningRegistry,
    announce,
    get,
    register,
    running_registry,
)

INTERVAL = 30


def seen(collector: registry_pb2.Collector) -> datetime:
    return collector.last_seen.ToDatetime(tzinfo=UTC)


def stamp(when: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(when)
    return result


def session(
    instance_uid: str,
    session_id: str,
    *,
    connected: bool,
    last_error: str = "",
    heard: datetime | None = None,
    skew_ms: int = 0,
    spool: agent_pb2.SpoolStatus | None = None,
    check_in_seconds: int = 0,
) -> registry_pb2.SessionReport:
    return registry_pb2.SessionReport(
        instance_uid=instance_uid,
        session_id=session_id,
        connected=connected,
        remote_address="198.51.100.20:7000",
        transport="http_poll" if check_in_seconds else "tcp",
        last_error=last_error,
        last_heard_at=None if heard is None else stamp(heard),
        clock_skew_ms=skew_ms,
        spool=spool,
        check_in_seconds=check_in_seconds,
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


async def test_online_turns_false_after_two_intervals_without_a_report(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        await report(registry, "gw-1", session(collector.instance_uid, "s-1", connected=True, heard=clock.now))
        assert (await get(registry, "edge-7")).online

        clock.advance(2 * INTERVAL)  # exactly two intervals: still online
        assert (await get(registry, "edge-7")).online

        # Nobody reports any more (its gateway was killed with -9): offline, though the
        # gateway's last word was "connected".
        clock.advance(1)
        shown = await get(registry, "edge-7")
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert (shown.online, shown.connected) == (False, True)
        assert [(c.name, c.online) for c in listed.collectors] == [("edge-7", False)]


async def test_online_follows_when_the_gateway_last_heard_not_when_it_reported(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        heard = clock.now
        clock.advance(INTERVAL)
        # The gateway still holds the session and reports it, but has heard nothing since.
        await report(registry, "gw-1", session(collector.instance_uid, "s-1", connected=True, heard=heard))
        assert (await get(registry, "edge-7")).online
        clock.advance(INTERVAL + 1)
        live = session(collector.instance_uid, "s-1", connected=True, heard=heard)
        await report(registry, "gw-1", live, complete=True)

        shown = await get(registry, "edge-7")
        assert (shown.online, shown.connected) == (False, True)
        assert seen(shown) == heard


async def test_last_seen_never_moves_back_and_is_capped_at_the_registrys_now(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        announced = clock.now
        uid = collector.instance_uid

        # A late report, heard before the handshake: last_seen stays.
        await report(registry, "gw-1", session(uid, "s-1", connected=True, heard=announced - timedelta(seconds=100)))
        assert seen(await get(registry, "edge-7")) == announced

        # A gateway whose clock runs an hour fast: capped at the registry's now.
        clock.advance(100)
        await report(registry, "gw-1", session(uid, "s-1", connected=True, heard=clock.now + timedelta(hours=1)))
        assert seen(await get(registry, "edge-7")) == clock.now


async def test_report_records_clock_skew_and_spool_and_keeps_them_when_a_report_has_none(
    database_url: str,
) -> None:
    clock = ManualClock()
    spool = agent_pb2.SpoolStatus(
        batches=3,
        bytes=4096,
        max_bytes=1 << 28,
        max_age_seconds=604800,
        oldest_unix_ms=int(clock.now.timestamp() * 1000) - 5000,
        dropped_full=2,
        dropped_devices=7,
    )
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        uid = collector.instance_uid
        await report(registry, "gw-1", session(uid, "s-1", connected=True, heard=clock.now, skew_ms=-7250, spool=spool))
        recorded = await get(registry, "edge-7")

        # A gateway that predates the fields (no last_heard_at, no spool) changes neither.
        await report(registry, "gw-1", session(uid, "s-1", connected=True))
        kept = await get(registry, "edge-7")

        assert recorded.clock_skew_ms == -7250
        assert recorded.spool == spool
        assert (kept.clock_skew_ms, kept.spool) == (-7250, spool)
        assert kept.online


async def test_disconnect_records_the_error_its_time_and_the_last_spool(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        response = await collector.authenticate(registry, session_id="s-1")
        assert response.decision == registry_pb2.DECISION_ACCEPTED
        heard = clock.advance(5)
        reported_at = clock.advance(20)
        final = agent_pb2.SpoolStatus(batches=1, bytes=10)

        await report(
            registry,
            "gw-1",
            session(
                collector.instance_uid,
                "s-1",
                connected=False,
                last_error="heartbeat timeout: nothing heard for 90 s",
                heard=heard,
                skew_ms=12,
                spool=final,
            ),
        )

        shown = await get(registry, "edge-7")
        assert (shown.connected, shown.online) == (False, False)
        assert shown.last_error == "heartbeat timeout: nothing heard for 90 s"
        assert shown.last_error_at.ToDatetime(tzinfo=UTC) == reported_at
        assert seen(shown) == heard
        assert (shown.clock_skew_ms, shown.spool) == (12, final)


async def test_a_stale_session_on_an_old_gateway_does_not_pull_the_collector_back(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        await collector.authenticate(registry, gateway_id="gw-1", session_id="old")
        old_heard = clock.now
        clock.advance(10)
        await collector.authenticate(registry, gateway_id="gw-2", session_id="new")
        clock.advance(5)

        # gw-1 has not noticed the old session died: it still lists it, last heard long ago.
        await report(registry, "gw-1", session(collector.instance_uid, "old", connected=True, heard=old_heard))
        shown = await get(registry, "edge-7")

        assert (shown.gateway_id, shown.connected, shown.online) == ("gw-2", True, True)


async def test_complete_report_keeps_listed_sessions_heard_before_the_report(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        await collector.authenticate(registry, gateway_id="gw-1", session_id="s-1")
        heard = clock.advance(10)
        clock.advance(5)

        live = session(collector.instance_uid, "s-1", connected=True, heard=heard)
        await report(registry, "gw-1", live, complete=True)

        shown = await get(registry, "edge-7")
        assert (shown.connected, shown.online) == (True, True)


async def test_the_hello_spool_is_recorded_at_the_handshake(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        request = collector.request(registry.server_instance)
        request.hello.spool.CopyFrom(agent_pb2.SpoolStatus(batches=9, bytes=900, dropped_expired=1))

        response = await registry.stub.AuthenticateCollector(request)

        assert response.decision == registry_pb2.DECISION_ACCEPTED
        assert (await get(registry, "edge-7")).spool == agent_pb2.SpoolStatus(batches=9, bytes=900, dropped_expired=1)


async def test_a_polling_collector_checking_in_every_five_minutes_stays_online_between_check_ins(
    database_url: str,
) -> None:
    """Its gateway reports it every half heartbeat with the last poll's time; `collectors list`,
    `show` and `explain` all call it online until its check-in is overdue by the grace."""
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        polling = await announce(registry, "edge-poll")
        streaming = await announce(registry, "edge-tcp")
        for name in ("edge-poll", "edge-tcp"):
            await register(registry, name)
        polled = clock.now
        for _ in range(2):  # two check-ins, five minutes apart
            for _ in range(10):  # the gateway's complete reports in between, with the same poll time
                await report(
                    registry,
                    "gw-1",
                    session(polling.instance_uid, "s-p", connected=True, heard=polled, check_in_seconds=300),
                    session(streaming.instance_uid, "s-t", connected=True, heard=polled),
                    complete=True,
                )
                listed = {
                    c.name: c
                    for c in (await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())).collectors
                }
                assert listed["edge-poll"].online, clock.now - polled
                assert listed["edge-poll"].check_in_seconds == 300
                explained = await registry.stub.ExplainCollector(registry_pb2.ExplainCollectorRequest(name="edge-poll"))
                assert explained.live, explained.summary
                clock.advance(29)
            assert not listed["edge-tcp"].online  # the same silence from a streaming collector is offline
            clock.advance(10)
            last_poll, polled = polled, clock.now  # it checks in

        clock.advance(2 * INTERVAL + 1)  # that check-in never came, and the grace is spent
        gateway_still_holds_it = session(
            polling.instance_uid, "s-p", connected=True, heard=last_poll, check_in_seconds=300
        )
        await report(registry, "gw-1", gateway_still_holds_it, complete=True)
        shown = await get(registry, "edge-poll")
        assert shown.connected and not shown.online
        explained = await registry.stub.ExplainCollector(registry_pb2.ExplainCollectorRequest(name="edge-poll"))
        assert not explained.live
        assert "check-in interval plus 2 heartbeat intervals" in explained.summary


async def test_a_new_session_forgets_the_previous_sessions_check_in_interval(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, heartbeat_interval=INTERVAL, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        await report(
            registry,
            "gw-1",
            session(collector.instance_uid, "s-1", connected=True, heard=clock.now, check_in_seconds=300),
        )
        assert (await get(registry, "edge-7")).check_in_seconds == 300
        await collector.authenticate(registry, gateway_id="gw-2", session_id="s-2", transport="grpc")
        again = await get(registry, "edge-7")
        assert (again.transport, again.check_in_seconds) == ("grpc", 0)
        clock.advance(2 * INTERVAL + 1)
        assert not (await get(registry, "edge-7")).online


async def test_a_check_in_interval_beyond_the_settings_bound_is_refused(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await report(
                registry, "gw-1", session(collector.instance_uid, "s-1", connected=True, check_in_seconds=86_401)
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "check_in_seconds 86401 is beyond 86400" in str(refused.value.details())


async def test_spool_drops_reported_by_collectors_move_the_zones_dropped_gauge(database_url: str) -> None:
    """The alert OutpostSpoolDropping reads this gauge: it must grow when a collector reports a drop."""
    from prometheus_client import REGISTRY

    from services.registry import metrics

    def dropped(zone: str, cause: str) -> float | None:
        return REGISTRY.get_sample_value(
            "outpost_registry_collector_spool_dropped_batches", {"zone": zone, "cause": cause}
        )

    async with running_registry(database_url, heartbeat_interval=INTERVAL) as registry:
        one = await announce(registry, "edge-spool-1", zone="branch-a")
        two = await announce(registry, "edge-spool-2", zone="branch-a")
        other = await announce(registry, "edge-spool-3", zone="branch-b")
        for collector, full in ((one, 2), (two, 3), (other, 0)):
            spool = agent_pb2.SpoolStatus(batches=1, bytes=100, dropped_full=full, dropped_devices=full * 10)
            await report(registry, "gw-1", session(collector.instance_uid, "s", connected=True, spool=spool))
        metrics.set_spool_gauges(await registry.server.store.spool_totals_by_zone())
        before = dropped("branch-a", "full")

        # One collector reports three more batches lost to a full spool (and one expired).
        spool = agent_pb2.SpoolStatus(batches=0, bytes=0, dropped_full=5, dropped_expired=1, dropped_devices=50)
        await report(registry, "gw-1", session(one.instance_uid, "s", connected=True, spool=spool))
        metrics.set_spool_gauges(await registry.server.store.spool_totals_by_zone())

        assert before == 5
        assert dropped("branch-a", "full") == 8
        assert dropped("branch-a", "expired") == 1
        assert dropped("branch-b", "full") == 0
        assert REGISTRY.get_sample_value("outpost_registry_collector_spool_batches", {"zone": "branch-a"}) == 1
        assert REGISTRY.get_sample_value("outpost_registry_collector_spool_dropped_devices", {"zone": "branch-a"}) == 80
