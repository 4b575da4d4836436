"""Lease renewal: one RenewLeases per period for every run the live sessions report; lost ones cancelled."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import pytest

from outpost.grpc_errors import peer_error
from outpost.session.server import ServerState
from services.gateway.peers.scheduler_client import LeaseHold, LostLease, Renewal
from services.gateway.sessions.hub import LiveSession, RunCancelled, SessionHub
from services.gateway.sessions.lease_renewal import LeaseRenewer

HEARTBEAT = 30.0


class FakeScheduler:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[LeaseHold]]] = []
        self.answer = Renewal(lost=[], lease_seconds=90)
        self.down = False

    async def renew_leases(self, *, gateway_id: str, holds: Sequence[LeaseHold]) -> Renewal:
        self.calls.append((gateway_id, list(holds)))
        if self.down:
            raise peer_error(
                grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")
            )
        return self.answer


def live(hub: SessionHub, uid: str, runs: set[str]) -> list[object]:
    delivered: list[object] = []
    session = LiveSession(
        session_id=f"s-{uid}",
        instance_uid=uid,
        name=uid,
        zone="lab",
        transport="grpc",
        remote_address="10.0.0.1:5000",
        opened_at=0.0,
        deliver=delivered.append,
        state=ServerState.ENABLED,
        running_job_run_ids=frozenset(runs),
    )
    hub.attach(session)
    return delivered


@pytest.fixture
def hub() -> SessionHub:
    return SessionHub()


async def test_every_sessions_running_runs_are_renewed_in_one_call(hub: SessionHub) -> None:
    live(hub, "uid-a", {"run-2", "run-1"})
    live(hub, "uid-b", {"run-3"})
    live(hub, "uid-c", set())
    scheduler = FakeScheduler()
    renewer = LeaseRenewer(scheduler, hub, "gw-1", HEARTBEAT)

    await renewer.renew()

    assert scheduler.calls == [
        ("gw-1", [LeaseHold("uid-a", "run-1"), LeaseHold("uid-a", "run-2"), LeaseHold("uid-b", "run-3")])
    ]


async def test_no_running_runs_means_no_call(hub: SessionHub) -> None:
    live(hub, "uid-a", set())
    scheduler = FakeScheduler()
    await LeaseRenewer(scheduler, hub, "gw-1", HEARTBEAT).renew()
    assert scheduler.calls == []


async def test_a_lost_lease_sends_job_cancel_to_the_collector_holding_it(hub: SessionHub) -> None:
    a = live(hub, "uid-a", {"run-1", "run-2"})
    b = live(hub, "uid-b", {"run-3"})
    scheduler = FakeScheduler()
    scheduler.answer = Renewal(lost=[LostLease("uid-a", "run-2", "run-2 is attempt 2 on edge-9 now")], lease_seconds=90)

    await LeaseRenewer(scheduler, hub, "gw-1", HEARTBEAT).renew()

    assert a == [RunCancelled("run-2", "run-2 is attempt 2 on edge-9 now")]
    assert b == []


async def test_the_period_follows_a_third_of_the_lease_but_never_exceeds_the_heartbeat(hub: SessionHub) -> None:
    live(hub, "uid-a", {"run-1"})
    scheduler = FakeScheduler()
    renewer = LeaseRenewer(scheduler, hub, "gw-1", HEARTBEAT)
    assert renewer.period == HEARTBEAT

    scheduler.answer = Renewal(lost=[], lease_seconds=45)
    await renewer.renew()
    assert renewer.period == 15.0

    scheduler.answer = Renewal(lost=[], lease_seconds=600)
    await renewer.renew()
    assert renewer.period == HEARTBEAT

    scheduler.answer = Renewal(lost=[], lease_seconds=0)  # a scheduler that does not say: keep the last
    await renewer.renew()
    assert renewer.period == HEARTBEAT


async def test_an_unavailable_scheduler_is_logged_and_asked_again_next_period(hub: SessionHub) -> None:
    delivered = live(hub, "uid-a", {"run-1"})
    scheduler = FakeScheduler()
    scheduler.down = True
    renewer = LeaseRenewer(scheduler, hub, "gw-1", HEARTBEAT)

    await renewer.renew()  # does not raise
    scheduler.down = False
    await renewer.renew()

    assert len(scheduler.calls) == 2 and delivered == []
