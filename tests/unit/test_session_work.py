"""Work over a live session: job assignment, progress, results, acks, cancel and config.

The rule this guards: only an ENABLED collector is given work or has results accepted;
pending and disabled collectors receive nothing but their state (and, once disabled, the
cancel of a run it already had), and their results are refused, never acknowledged.
"""

from __future__ import annotations

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.session.collector import BatchAcked, ConfigChanged, JobAssigned, JobCancelled, StateChanged
from outpost.session.collector import CollectorState as CS
from outpost.session.server import (
    AuthenticationRequested,
    JobUpdateReceived,
    ResultBatchReceived,
    ServerState,
    WorkRefused,
)
from tests.unit.test_session_pair import Pair, connect, registry_decides

NOW = 1.0
ASSIGNMENT = agent_pb2.JobAssignment(job_run_id="jr_1", discovery="lab", targets=["127.0.0.0/29"], ports=[22])
BATCH = agent_pb2.ResultBatch(job_run_id="jr_1", sequence=1, devices=[agent_pb2.DeviceObservation(ip="127.0.0.1")])
UPDATE = agent_pb2.JobUpdate(job_run_id="jr_1", state=agent_pb2.JOB_STATE_RUNNING, targets_total=8)


def accepted_pair(state: ServerState) -> Pair:
    pair = connect()
    (request,) = [e for e in pair.server_events if isinstance(e, AuthenticationRequested)]
    pair.server.authenticated(registry_decides(request, state), NOW)
    pair.pump(NOW)
    pair.take_events()
    return pair


def test_enabled_collector_gets_its_job_reports_progress_and_has_results_acked() -> None:
    pair = accepted_pair(ServerState.ENABLED)
    assert pair.server.assign_job(ASSIGNMENT)
    pair.pump(NOW)
    collector_events, _ = pair.take_events()
    assert collector_events == [JobAssigned(ASSIGNMENT)]

    assert pair.collector.send_job_update(UPDATE)
    assert pair.collector.send_result_batch(BATCH)
    pair.pump(NOW)
    _, server_events = pair.take_events()
    assert server_events == [JobUpdateReceived(UPDATE), ResultBatchReceived(BATCH)]

    assert pair.server.ack_batch("jr_1", 1)
    assert pair.server.cancel_job("jr_1", "cancelled by admin")
    pair.pump(NOW)
    collector_events, _ = pair.take_events()
    assert collector_events == [BatchAcked("jr_1", 1), JobCancelled("jr_1", "cancelled by admin")]
    assert pair.collector.state is CS.ENABLED and pair.server.state is ServerState.ENABLED


@pytest.mark.parametrize("state", [ServerState.PENDING, ServerState.DISABLED])
def test_pending_and_disabled_collectors_are_never_given_work(state: ServerState) -> None:
    pair = accepted_pair(state)
    assert not pair.server.assign_job(ASSIGNMENT)
    assert pair.server.data_to_send() == []


def test_results_from_a_disabled_collector_are_refused_and_not_acked_but_its_status_is_heard() -> None:
    pair = accepted_pair(ServerState.ENABLED)
    pair.server.assign_job(ASSIGNMENT)
    pair.pump(NOW)
    pair.collector.send_result_batch(BATCH)
    pair.server.state_changed(ServerState.DISABLED, "maintenance", "admin", revision=2)
    pair.pump(NOW)
    collector_events, server_events = pair.take_events()
    # The batch was in flight when the admin acted: refused, not a protocol error.
    assert server_events[-1] == WorkRefused("result_batch", "jr_1", ServerState.DISABLED)
    assert not any(isinstance(e, ResultBatchReceived) for e in server_events)
    assert collector_events[-1] == StateChanged(CS.DISABLED, "maintenance", "admin")
    assert not pair.collector.send_result_batch(BATCH)

    cancelled = agent_pb2.JobUpdate(job_run_id="jr_1", state=agent_pb2.JOB_STATE_CANCELLED, error="collector disabled")
    assert pair.collector.send_job_update(cancelled)
    pair.pump(NOW)
    _, server_events = pair.take_events()
    assert server_events == [JobUpdateReceived(cancelled)]
    assert pair.server.state is ServerState.DISABLED and not pair.server.closed


def test_pending_collector_sending_results_is_refused_without_closing() -> None:
    pair = accepted_pair(ServerState.PENDING)
    forged = agent_pb2.CollectorMessage(sequence=99, result_batch=BATCH)
    pair.server.receive(forged, NOW)
    assert pair.server.events_received()[-1] == WorkRefused("result_batch", "jr_1", ServerState.PENDING)
    assert pair.server.state is ServerState.PENDING
    assert all(m.WhichOneof("body") != "batch_ack" for m in pair.server.data_to_send())


def test_config_updates_reach_pending_collectors_and_change_the_heartbeat() -> None:
    pair = accepted_pair(ServerState.PENDING)
    config = agent_pb2.ConfigUpdate(collector_check_minutes=7, heartbeat_interval_seconds=5)
    assert pair.server.update_config(config)
    pair.pump(NOW)
    collector_events, _ = pair.take_events()
    assert collector_events == [ConfigChanged(config)]
    assert pair.collector.heartbeat_interval == 5.0


def test_assignment_to_a_disabled_collector_is_a_protocol_error_on_the_collector() -> None:
    pair = accepted_pair(ServerState.DISABLED)
    pair.collector.receive(agent_pb2.ServerMessage(sequence=50, job_assignment=ASSIGNMENT), NOW)
    assert pair.collector.closed
    (disconnect,) = [m.disconnect for m in pair.collector.data_to_send() if m.WhichOneof("body") == "disconnect"]
    assert disconnect.reason == agent_pb2.DISCONNECT_REASON_PROTOCOL_ERROR
    assert "unexpected job_assignment" in disconnect.message
