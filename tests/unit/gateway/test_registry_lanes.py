"""The gateway's bounds on handshake calls to the registry (ADR 0034): run, wait, or refuse at once."""

from __future__ import annotations

import asyncio

import pytest

from outpost.agent.v1 import agent_pb2
from services.gateway.sessions.local_verification import Lane, LaneFull, RegistryLanes, busy_decision


async def test_a_full_lane_refuses_at_once_with_a_retry_after_and_frees_its_slots() -> None:
    lane = Lane("first_contact", capacity=2, max_waiting=1, retry_after=5)
    release = asyncio.Event()
    entered = 0

    async def call() -> None:
        nonlocal entered
        async with lane.slot():
            entered += 1
            await release.wait()

    running = [asyncio.create_task(call()) for _ in range(3)]  # two run, one waits
    await asyncio.sleep(0.01)
    assert (lane.running, lane.waiting, entered) == (2, 1, 2)
    with pytest.raises(LaneFull) as full:
        async with lane.slot():
            pass
    decision = busy_decision(full.value)
    assert not decision.accepted and decision.retry_after == 5
    assert decision.refusal == agent_pb2.DISCONNECT_REASON_UNAVAILABLE
    assert "retry in 5 s" in decision.message
    release.set()
    await asyncio.gather(*running)
    assert (lane.running, lane.waiting, entered) == (0, 0, 3)


async def test_first_contacts_have_their_own_lane() -> None:
    lanes = RegistryLanes(known=Lane("known", 1, 0, 2), first_contact=Lane("first_contact", 1, 0, 5))
    async with lanes.lane(known=False).slot():
        with pytest.raises(LaneFull):  # newcomers are full ...
            async with lanes.lane(known=False).slot():
                pass
        async with lanes.lane(known=True).slot():  # ... and a known collector still gets in
            pass
