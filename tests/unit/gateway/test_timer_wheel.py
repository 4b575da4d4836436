"""The shared timer wheel: deadlines fire once, never early, late by at most the resolution; moves and cancels hold."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.sessions.timer_wheel import TimerWheel

RESOLUTION = 0.02


class Owner:
    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, order: list[str] | None = None) -> None:
        self.loop = loop
        self.name = name
        self.order = order
        self.fired: list[float] = []
        self.event = asyncio.Event()

    def deadline_due(self) -> None:
        self.fired.append(self.loop.time())
        if self.order is not None:
            self.order.append(self.name)
        self.event.set()


async def test_each_owner_is_told_once_at_or_after_its_deadline_in_deadline_order() -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(RESOLUTION)
    now = loop.time()
    order: list[str] = []
    owners = [Owner(loop, f"o{i}", order) for i in range(5)]
    for i in reversed(range(5)):  # armed latest first
        wheel.schedule(owners[i], now + 0.05 + 0.03 * i)
    await asyncio.wait_for(asyncio.gather(*(o.event.wait() for o in owners)), 5)
    for i, owner in enumerate(owners):
        deadline = now + 0.05 + 0.03 * i
        assert len(owner.fired) == 1
        assert owner.fired[0] >= deadline - 1e-6
    assert order == [o.name for o in owners]
    assert len(wheel) == 0


async def test_moving_a_deadline_replaces_it_and_cancel_or_none_disarms() -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(RESOLUTION)
    moved, cancelled, disarmed, witness = (Owner(loop, n) for n in ("moved", "cancelled", "disarmed", "witness"))
    now = loop.time()
    wheel.schedule(moved, now + 0.04)
    wheel.schedule(moved, now + 0.3)  # moved later: the first deadline must not fire
    wheel.schedule(cancelled, now + 0.04)
    wheel.cancel(cancelled)
    wheel.schedule(disarmed, now + 0.04)
    wheel.schedule(disarmed, None)
    wheel.schedule(witness, now + 0.1)
    await asyncio.wait_for(witness.event.wait(), 5)
    assert moved.fired == [] and cancelled.fired == [] and disarmed.fired == []
    assert len(wheel) == 1
    await asyncio.wait_for(moved.event.wait(), 5)
    assert moved.fired[0] >= now + 0.3 - 1e-6
    assert len(wheel) == 0


async def test_an_earlier_deadline_rearms_the_single_timer_and_an_owner_may_rearm_when_told() -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(RESOLUTION)
    late, early = Owner(loop, "late"), Owner(loop, "early")
    now = loop.time()
    wheel.schedule(late, now + 0.5)
    wheel.schedule(early, now + 0.03)  # earlier than the armed timer: must not wait for 0.5 s
    await asyncio.wait_for(early.event.wait(), 5)
    assert late.fired == []

    again = Owner(loop, "again")
    calls = 0

    def rearm() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            wheel.schedule(again, loop.time() + 0.03)
        else:
            again.event.set()

    again.deadline_due = rearm  # type: ignore[method-assign]
    wheel.schedule(again, loop.time() + 0.01)
    await asyncio.wait_for(again.event.wait(), 5)
    assert calls == 2
    await asyncio.wait_for(late.event.wait(), 5)
    wheel.close()
    assert len(wheel) == 0


async def test_many_owners_share_slots() -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(RESOLUTION)
    owners = [Owner(loop, str(i)) for i in range(2000)]
    now = loop.time()
    for i, owner in enumerate(owners):
        wheel.schedule(owner, now + 0.05 + (i % 10) * 0.005)
    assert len(wheel) == 2000
    assert len(wheel._slots) <= 4  # 10 distinct deadlines within 0.05 s round into a few 0.02 s slots
    await asyncio.wait_for(asyncio.gather(*(o.event.wait() for o in owners)), 5)
    assert all(len(o.fired) == 1 for o in owners)


def test_resolution_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TimerWheel(0)
