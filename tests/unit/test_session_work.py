"""Work over a live session: job assignment, progress, results, acks, throttles, cancel and config.

The rules this guards: only an ENABLED collector is given work or has results accepted;
pending and disabled collectors receive nothing but their state (and, once disabled, the
cancel of a run it already had), and their results are refused, never acknowledged. The
gateway's `SessionWork` acks a batch (with its attempt) only once it is committed or can
never be, and answers a batch the inventory cannot take now with Throttle (ADR 0010).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import grpc
import pytest

from outpost import errors
from outpost.agent.v1 import agent_pb2
from outpost.grpc_errors import peer_error
from outpost.scheduler.v1 import scheduler_pb2
from outpost.session.collector import (
    BatchAcked,
    ConfigChanged,
    JobAssigned,
    JobCancelled,
    StateChanged,
    Throttled,
)
from outpost.session.collector import CollectorState as CS
from outpost.session.server import (
    AuthenticationRequested,
    JobUpdateReceived,
    ResultBatchReceived,
    ServerState,
    WorkRefused,
)
from services.gateway.inventory.ingest_gate import IngestGate
from services.gateway.sessions.work import SessionWork, WorkContext, probes_run, tcp_ports_scanned
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


# --- the gateway's side: SessionWork over the session, with fake scheduler and inventory --
UID = "uid-edge-1"
DISCOVERY = scheduler_pb2.Discovery(name="lab", targets=["10.0.0.0/29"], ports=[22, 80])


def job_run(attempt: int = 1, holder: str = UID) -> scheduler_pb2.JobRun:
    return scheduler_pb2.JobRun(
        id="jr_1", discovery="lab", collector_instance_uid=holder, attempt=attempt, discovery_snapshot=DISCOVERY
    )


def result(sequence: int = 1, attempt: int = 1) -> agent_pb2.ResultBatch:
    return agent_pb2.ResultBatch(
        job_run_id="jr_1", sequence=sequence, attempt=attempt, devices=[agent_pb2.DeviceObservation(ip="10.0.0.1")]
    )


def unavailable(code: grpc.StatusCode) -> errors.OutpostError:
    """What the scheduler client raises for a peer's `code` (it maps statuses at its edge)."""
    return peer_error(grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), code.name.lower()))


class FakeScheduler:
    def __init__(self, run: scheduler_pb2.JobRun) -> None:
        self.run = run
        self.claimable = [run]
        self.error: errors.OutpostError | None = None
        self.report_errors: list[errors.OutpostError] = []
        self.reported: list[agent_pb2.JobUpdate] = []

    async def claim(self, **_: object) -> list[scheduler_pb2.JobRun]:
        runs, self.claimable = self.claimable, []
        return runs

    async def get_run(self, job_run_id: str) -> scheduler_pb2.JobRun:
        if self.error is not None:
            raise self.error
        return self.run

    async def report(self, *, update: agent_pb2.JobUpdate, **_: object) -> scheduler_pb2.JobRun:
        if self.report_errors:
            raise self.report_errors.pop(0)
        self.reported.append(update)
        return self.run


class FakeInventory:
    """Commits by identity, as the real one dedups; `failure` makes every commit raise it."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str, int, int], list[int]] = {}
        self.failure: Exception | None = None
        self.ended: list[dict[str, object]] = []
        self.discoveries: list[str] = []

    async def commit(
        self,
        batch: agent_pb2.ResultBatch,
        *,
        instance_uid: str,
        collector: str,
        zone: str,
        scanned_ports: Collection[int],
        clock_skew_ms: int = 0,
        probes: Collection[str] | None = None,
        discovery: str = "",
    ) -> bool:
        if self.failure is not None:
            raise self.failure
        key = (instance_uid, batch.job_run_id, batch.attempt, batch.sequence)
        self.discoveries.append(discovery)
        new = key not in self.stored
        self.stored.setdefault(key, list(scanned_ports))
        return new

    async def run_ended(self, **run: object) -> None:
        self.ended.append(run)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def working(run: scheduler_pb2.JobRun | None = None) -> tuple[Pair, SessionWork, FakeScheduler, FakeInventory, Clock]:
    pair = accepted_pair(ServerState.ENABLED)
    scheduler, inventory, clock = FakeScheduler(run or job_run()), FakeInventory(), Clock()
    gate = IngestGate(clock=clock, jitter=lambda: 0.0)
    ctx = WorkContext("gw-1", scheduler, None, inventory, gate)  # type: ignore[arg-type]
    return pair, SessionWork(ctx, UID, "edge-1", "lab", deliver=lambda item: None), scheduler, inventory, clock


async def send(pair: Pair, work: SessionWork, batch: agent_pb2.ResultBatch) -> list[object]:
    """The collector sends `batch`; the gateway's work handles it; what the collector hears."""
    assert pair.collector.send_result_batch(batch)
    pair.pump(NOW)
    _, server_events = pair.take_events()
    for event in server_events:
        assert isinstance(event, ResultBatchReceived)
        await work.result_batch(pair.server, event.batch)
    pair.pump(NOW)
    return list(pair.take_events()[0])


async def test_an_assignment_carries_the_runs_attempt() -> None:
    pair, work, *_ = working(job_run(attempt=2))
    await work.claim(pair.server)
    pair.pump(NOW)
    [assigned] = pair.take_events()[0]
    assert isinstance(assigned, JobAssigned)
    assert (assigned.assignment.job_run_id, assigned.assignment.attempt) == ("jr_1", 2)
    assert list(assigned.assignment.ports) == [22, 80]


async def test_a_committed_batch_is_acked_with_its_attempt_and_a_resend_is_acked_again() -> None:
    pair, work, _, inventory, _ = working(job_run(attempt=2))
    assert await send(pair, work, result(sequence=1, attempt=2)) == [BatchAcked("jr_1", 1, 2)]
    assert await send(pair, work, result(sequence=1, attempt=2)) == [BatchAcked("jr_1", 1, 2)]
    assert inventory.stored == {(UID, "jr_1", 2, 1): [22, 80]}


async def test_a_batch_the_database_cannot_take_is_throttled_not_acked_and_acked_after_recovery() -> None:
    pair, work, _, inventory, clock = working()
    inventory.failure = errors.Unavailable("inventory database unavailable: connection was closed")

    [throttled] = await send(pair, work, result(1))
    assert throttled == Throttled(1.0, "inventory database unavailable; results stay in the spool")
    inventory.failure = None  # back already, but the cool-down is not over: not even tried
    assert await send(pair, work, result(2)) == [Throttled(1.0, "inventory database unavailable; cooling down")]
    assert inventory.stored == {}

    clock.now += 1.0
    assert await send(pair, work, result(1)) == [BatchAcked("jr_1", 1, 1)]
    assert await send(pair, work, result(2)) == [BatchAcked("jr_1", 2, 1)]
    assert set(inventory.stored) == {(UID, "jr_1", 1, 1), (UID, "jr_1", 1, 2)}


async def test_a_batch_that_can_never_be_stored_is_acked_so_the_collector_forgets_it() -> None:
    pair, work, _, inventory, _ = working()
    inventory.failure = errors.InvalidArgument("the inventory database refused the batch: value too long")
    assert await send(pair, work, result(1)) == [BatchAcked("jr_1", 1, 1)]
    assert inventory.stored == {}


async def test_batches_of_a_run_from_before_this_session_ask_the_scheduler_for_its_ports() -> None:
    pair, work, scheduler, inventory, _ = working()
    scheduler.error = unavailable(grpc.StatusCode.UNAVAILABLE)
    assert await send(pair, work, result(1)) == [Throttled(5.0, "the scheduler cannot be asked about this run now")]

    scheduler.error = None
    assert await send(pair, work, result(1)) == [BatchAcked("jr_1", 1, 1)]
    assert inventory.stored == {(UID, "jr_1", 1, 1): [22, 80]}

    scheduler.error = unavailable(grpc.StatusCode.UNAVAILABLE)  # remembered: not asked again
    assert await send(pair, work, result(2)) == [BatchAcked("jr_1", 2, 1)]


async def test_an_earlier_attempts_batches_are_committed_after_the_run_moved_but_the_current_one_is_not() -> None:
    pair, work, _, inventory, _ = working(job_run(attempt=2, holder="uid-edge-9"))

    assert await send(pair, work, result(1, attempt=1)) == [BatchAcked("jr_1", 1, 1)]
    assert await send(pair, work, result(1, attempt=2)) == [BatchAcked("jr_1", 1, 2)]  # rejected, not stored
    assert set(inventory.stored) == {(UID, "jr_1", 1, 1)}


async def test_the_last_attempts_batches_are_committed_while_the_run_waits_in_the_queue_for_its_next() -> None:
    pair, work, _, inventory, _ = working(job_run(attempt=1, holder=""))
    assert await send(pair, work, result(1, attempt=1)) == [BatchAcked("jr_1", 1, 1)]
    assert set(inventory.stored) == {(UID, "jr_1", 1, 1)}


async def test_a_batch_of_a_run_the_scheduler_does_not_know_is_acked_as_rejected() -> None:
    pair, work, scheduler, inventory, _ = working()
    scheduler.error = unavailable(grpc.StatusCode.NOT_FOUND)
    assert await send(pair, work, result(1)) == [BatchAcked("jr_1", 1, 1)]
    assert inventory.stored == {}


async def test_a_final_update_the_scheduler_cannot_take_now_is_retried_until_it_is_recorded() -> None:
    pair, work, scheduler, _, _ = working()
    work.ctx.retry_pauses = (0.0, 0.0, 0.0)
    scheduler.report_errors = [unavailable(grpc.StatusCode.UNAVAILABLE), unavailable(grpc.StatusCode.UNAVAILABLE)]
    final = agent_pb2.JobUpdate(job_run_id="jr_1", state=agent_pb2.JOB_STATE_SUCCEEDED, attempt=1, batches_sent=3)

    await work.job_update(pair.server, final)
    await asyncio.gather(*work.ctx.final_update_retries)

    assert scheduler.reported == [final]


async def test_a_progress_update_the_scheduler_cannot_take_is_not_retried_the_next_one_replaces_it() -> None:
    pair, work, scheduler, _, _ = working()
    scheduler.report_errors = [unavailable(grpc.StatusCode.UNAVAILABLE)]

    await work.job_update(pair.server, UPDATE)

    assert (scheduler.reported, work.ctx.final_update_retries) == ([], set())


async def test_a_run_without_the_tcp_probe_scanned_no_port_so_none_can_be_closed() -> None:
    icmp_only = scheduler_pb2.Discovery(name="sweep", targets=["10.0.0.0/29"], ports=[22, 80], probes=["icmp"])
    run = scheduler_pb2.JobRun(
        id="jr_1", discovery="sweep", collector_instance_uid=UID, attempt=1, discovery_snapshot=icmp_only
    )
    pair, work, _, inventory, _ = working(run)
    assert await send(pair, work, result(1)) == [BatchAcked("jr_1", 1, 1)]
    assert inventory.stored == {(UID, "jr_1", 1, 1): []}


@pytest.mark.parametrize(
    ("probes", "snmp_credential", "expected"),
    [
        ([], "", [22, 80]),  # the default set includes tcp
        (["tcp"], "", [22, 80]),
        (["icmp", "dns"], "", []),
        (["icmp"], "lab-snmp", []),  # a credential adds snmp, never tcp
    ],
)
def test_the_ports_a_run_measured_follow_the_probes_it_ran(
    probes: list[str], snmp_credential: str, expected: list[int]
) -> None:
    discovery = scheduler_pb2.Discovery(name="d", ports=[22, 80], probes=probes, snmp_credential=snmp_credential)
    assert tcp_ports_scanned(discovery.ports, probes_run(discovery)) == expected


async def test_a_run_the_scheduler_recorded_as_succeeded_reaches_the_inventory_with_its_targets() -> None:
    pair, work, scheduler, inventory, _ = working()
    scheduler.run.state = agent_pb2.JOB_STATE_SUCCEEDED
    final = agent_pb2.JobUpdate(job_run_id="jr_1", state=agent_pb2.JOB_STATE_SUCCEEDED, attempt=1)

    await work.job_update(pair.server, final)

    assert inventory.ended == [
        {
            "zone": "lab",
            "discovery": "lab",
            "job_run_id": "jr_1",
            "targets": list(DISCOVERY.targets),
            "exclusions": list(DISCOVERY.exclusions),
        }
    ]


@pytest.mark.parametrize(
    "state", [agent_pb2.JOB_STATE_FAILED, agent_pb2.JOB_STATE_TIMED_OUT, agent_pb2.JOB_STATE_CANCELLED]
)
async def test_a_run_that_did_not_succeed_counts_no_device_as_missed(state: agent_pb2.JobState) -> None:
    pair, work, scheduler, inventory, _ = working()
    scheduler.run.state = state
    await work.job_update(pair.server, agent_pb2.JobUpdate(job_run_id="jr_1", state=state, attempt=1))
    assert inventory.ended == []


async def test_a_succeeded_run_whose_final_update_was_retried_reaches_the_inventory_once_taken() -> None:
    pair, work, scheduler, inventory, _ = working()
    work.ctx.retry_pauses = (0.0, 0.0)
    scheduler.run.state = agent_pb2.JOB_STATE_SUCCEEDED
    scheduler.report_errors = [unavailable(grpc.StatusCode.UNAVAILABLE), unavailable(grpc.StatusCode.UNAVAILABLE)]
    final = agent_pb2.JobUpdate(job_run_id="jr_1", state=agent_pb2.JOB_STATE_SUCCEEDED, attempt=1)

    await work.job_update(pair.server, final)
    await asyncio.gather(*work.ctx.final_update_retries)

    assert [e["job_run_id"] for e in inventory.ended] == ["jr_1"]


async def test_a_batch_is_committed_with_its_runs_discovery_so_its_devices_missed_none_of_its_runs() -> None:
    pair, work, _, inventory, _ = working()
    await send(pair, work, result(1))
    await send(pair, work, result(2))
    assert inventory.discoveries == ["lab", "lab"]
