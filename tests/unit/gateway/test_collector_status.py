"""What the gateway keeps of each collector's own account, and how the registry is told it."""

from __future__ import annotations

from outpost.agent.v1 import agent_pb2
from outpost.session.server import ServerState
from services.gateway.peers.registry_client import SessionReport, _report_to_proto
from services.gateway.sessions.collector_status import clock_skew_ms, heartbeat_heard, hello_spool
from services.gateway.sessions.hub import LiveSession, SessionHub, SpoolStatus
from services.gateway.sessions.reports import live_reports

SPOOL = agent_pb2.SpoolStatus(batches=3, bytes=4096, max_bytes=1 << 28, dropped_full=2, dropped_devices=40)


def session() -> LiveSession:
    return LiveSession(
        session_id="s-1",
        instance_uid="uid-1",
        name="edge-1",
        zone="lab",
        transport="tcp",
        remote_address="10.0.0.7:40000",
        opened_at=1_000.0,
        deliver=lambda item: None,
        state=ServerState.ENABLED,
        last_message_at=1_700_000_000.25,
        clock_skew_ms=-1500,
    )


def test_clock_skew_is_the_collectors_clock_minus_ours_and_a_missing_time_is_ignored() -> None:
    assert clock_skew_ms(1_700_000_002_000, now=1_700_000_000.0) == 2000
    assert clock_skew_ms(1_699_999_999_500, now=1_700_000_000.0) == -500
    assert clock_skew_ms(0, now=1_700_000_000.0) is None


def test_the_spool_comes_from_the_hello_then_from_each_heartbeat_that_carries_one() -> None:
    assert hello_spool(agent_pb2.Hello(name="edge-1")) is None
    assert hello_spool(agent_pb2.Hello(spool=SPOOL)) == SpoolStatus(
        batches=3, bytes=4096, max_bytes=1 << 28, dropped_full=2, dropped_devices=40
    )

    live = session()
    heartbeat_heard(live, agent_pb2.Heartbeat(spool=agent_pb2.SpoolStatus(batches=1), running_job_run_ids=["r1"]))
    assert live.spool == SpoolStatus(batches=1)
    assert live.running_job_run_ids == {"r1"}
    heartbeat_heard(live, agent_pb2.Heartbeat())  # an older collector: no spool, no runs
    assert live.spool == SpoolStatus(batches=1)
    assert live.running_job_run_ids == frozenset()


def test_a_finished_run_a_heartbeat_still_lists_is_not_held_until_it_drops_off() -> None:
    live = session()
    live.finished_job_run_ids = frozenset({"r1"})  # its final update was forwarded

    heartbeat_heard(live, agent_pb2.Heartbeat(running_job_run_ids=["r1", "r2"]))
    assert live.running_job_run_ids == {"r2"}
    heartbeat_heard(live, agent_pb2.Heartbeat(running_job_run_ids=["r2"]))  # the collector saw the update land
    assert (live.running_job_run_ids, live.finished_job_run_ids) == ({"r2"}, frozenset())


def test_the_complete_report_carries_last_heard_skew_spool_address_and_transport() -> None:
    hub = SessionHub()
    live = session()
    live.spool = SpoolStatus(batches=3, dropped_expired=1)
    hub.attach(live)

    [report] = live_reports(hub)
    message = _report_to_proto(report)

    assert message.instance_uid == "uid-1" and message.session_id == "s-1" and message.connected
    assert (message.remote_address, message.transport) == ("10.0.0.7:40000", "tcp")
    assert message.last_heard_at.ToMilliseconds() == 1_700_000_000_250
    assert message.clock_skew_ms == -1500
    assert message.spool == agent_pb2.SpoolStatus(batches=3, dropped_expired=1)


def test_a_disconnect_report_leaves_out_what_was_not_heard() -> None:
    message = _report_to_proto(SessionReport("uid-1", "s-1", connected=False, last_error="connection lost"))
    assert not message.connected and message.last_error == "connection lost"
    assert not message.HasField("last_heard_at") and not message.HasField("spool")
