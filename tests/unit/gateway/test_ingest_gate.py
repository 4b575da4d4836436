"""The ingest gate: what each kind of commit failure does, the breaker's cool-downs, the limit.

The clock is injected and jitter is zero, so every retry time is exact; commits are plain
coroutines (no database): they succeed, raise what the store raises, or wait on an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from outpost import errors
from services.gateway.inventory.ingest_gate import (
    COOL_DOWN_CAP_SECONDS,
    MAX_UNEXPECTED_FAILURES,
    BatchKey,
    Breaker,
    Committed,
    IngestGate,
    Rejected,
    Throttled,
)

KEY = BatchKey("uid-1", "run-1", 1, 1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate(clock: Clock, **kwargs: float) -> IngestGate:
    return IngestGate(clock=clock, jitter=lambda: 0.0, **kwargs)  # type: ignore[arg-type]


def succeed(new: bool = True) -> Callable[[], Awaitable[bool]]:
    async def commit() -> bool:
        return new

    return commit


def fail(exc: Exception) -> Callable[[], Awaitable[bool]]:
    async def commit() -> bool:
        raise exc

    return commit


def untouched() -> Callable[[], Awaitable[bool]]:
    async def commit() -> bool:
        raise AssertionError("the database must not be touched while cooling down")

    return commit


# --- the breaker alone ----------------------------------------------------------------
def test_breaker_cool_down_doubles_per_failure_up_to_the_cap_and_a_success_resets_it() -> None:
    breaker = Breaker(initial=1.0, cap=COOL_DOWN_CAP_SECONDS)
    now, lengths = 0.0, []
    for _ in range(8):
        assert breaker.failed(started_at=now, now=now)
        lengths.append(breaker.cool_down)
        assert breaker.remaining(now) == breaker.cool_down
        now += breaker.cool_down  # the next failure comes after the cool-down ended
    assert lengths == [1, 2, 4, 8, 16, 30, 30, 30]

    assert breaker.succeeded()
    assert (breaker.cool_down, breaker.remaining(now)) == (0.0, 0.0)
    assert breaker.failed(started_at=now, now=now) and breaker.cool_down == 1.0
    assert not Breaker().succeeded()  # a success while healthy is no recovery


def test_breaker_counts_one_outage_wave_once() -> None:
    breaker = Breaker(initial=1.0)
    assert breaker.failed(started_at=10.0, now=10.0)
    # Failing while open (other sessions' commits of the same wave) adds nothing.
    assert not breaker.failed(started_at=10.0, now=10.5)
    # A slow commit begun before the breaker opened, failing after the cool-down: old news.
    assert not breaker.failed(started_at=9.0, now=12.0)
    assert breaker.cool_down == 1.0 and breaker.remaining(12.0) == 0.0
    # A commit begun after the cool-down failing: the outage goes on, the cool-down doubles.
    assert breaker.failed(started_at=11.5, now=12.0)
    assert breaker.cool_down == 2.0


# --- outcomes -------------------------------------------------------------------------
async def test_a_good_commit_is_committed_and_a_resend_is_a_duplicate() -> None:
    g = gate(Clock())
    assert await g.commit(KEY, succeed(True)) == Committed(duplicate=False)
    assert await g.commit(KEY, succeed(False)) == Committed(duplicate=True)
    assert g.in_flight == 0


async def test_an_unavailable_database_throttles_and_then_cooling_down_does_not_touch_it() -> None:
    clock = Clock()
    g = gate(clock)

    first = await g.commit(KEY, fail(errors.Unavailable("connection was closed")))
    assert first == Throttled(1000, "inventory database unavailable; results stay in the spool")

    clock.now += 0.4
    assert await g.commit(KEY, untouched()) == Throttled(600, "inventory database unavailable; cooling down")

    clock.now += 0.6  # the cool-down is over: try again, fail again, the cool-down doubles
    again = await g.commit(KEY, fail(errors.Unavailable("connection refused")))
    assert again.retry_after_ms == 2000  # type: ignore[union-attr]

    clock.now += 2.0  # the database is back: the commit goes through and resets the breaker
    assert await g.commit(KEY, succeed()) == Committed(duplicate=False)
    assert g.breaker.cool_down == 0.0
    assert await g.commit(BatchKey("uid-1", "run-1", 1, 2), succeed()) == Committed(duplicate=False)


async def test_a_commit_timeout_counts_as_unavailable() -> None:
    hung = asyncio.Event()

    async def hangs() -> bool:
        await hung.wait()
        return True

    g = gate(Clock(), commit_timeout=0.01)
    outcome = await g.commit(KEY, hangs)
    assert outcome == Throttled(1000, "inventory database unavailable; results stay in the spool")
    assert g.breaker.cool_down == 1.0 and g.in_flight == 0


async def test_an_invalid_batch_is_rejected_so_it_is_acked_and_never_resent() -> None:
    g = gate(Clock())
    outcome = await g.commit(KEY, fail(errors.InvalidArgument("the inventory database refused the batch: bad")))
    assert outcome == Rejected("the inventory database refused the batch: bad")
    assert g.breaker.cool_down == 0.0  # one bad batch says nothing about the database


async def test_an_unexpected_failure_is_retried_a_few_times_then_rejected_without_opening_the_breaker() -> None:
    g = gate(Clock())
    crash = fail(KeyError("ip"))
    outcomes = [await g.commit(KEY, crash) for _ in range(MAX_UNEXPECTED_FAILURES)]

    retry = Throttled(1000, "the batch could not be committed; resend it")
    assert outcomes[:-1] == [retry] * (MAX_UNEXPECTED_FAILURES - 1)
    assert isinstance(outcomes[-1], Rejected) and "KeyError" in outcomes[-1].reason
    assert g.breaker.cool_down == 0.0
    # Other batches are not held back by a poison one.
    assert await g.commit(BatchKey("uid-1", "run-1", 1, 2), succeed()) == Committed(duplicate=False)


async def test_a_success_forgets_earlier_unexpected_failures_of_the_batch() -> None:
    g = gate(Clock())
    for _ in range(MAX_UNEXPECTED_FAILURES - 1):
        await g.commit(KEY, fail(RuntimeError("flaky")))
    assert await g.commit(KEY, succeed()) == Committed(duplicate=False)
    assert isinstance(await g.commit(KEY, fail(RuntimeError("flaky"))), Throttled)


async def test_retry_times_carry_jitter_of_up_to_a_quarter_of_the_cool_down() -> None:
    g = IngestGate(clock=Clock(), jitter=lambda: 1.0)
    outcome = await g.commit(KEY, fail(errors.Unavailable("down")))
    assert outcome.retry_after_ms == 1250  # type: ignore[union-attr]


# --- the limit ------------------------------------------------------------------------
async def test_commits_beyond_the_limit_wait_for_a_slot_and_are_throttled_if_none_frees() -> None:
    g = gate(Clock(), max_in_flight=2, slot_wait=0.01)
    release = asyncio.Event()
    started = 0

    async def slow() -> bool:
        nonlocal started
        started += 1
        await release.wait()
        return True

    running = [asyncio.create_task(g.commit(BatchKey("u", "r", 1, n), slow)) for n in (1, 2)]
    await asyncio.sleep(0)
    assert g.in_flight == 2

    busy = await g.commit(BatchKey("u", "r", 1, 3), succeed())
    assert busy == Throttled(1000, "2 commits in flight; gateway busy")
    assert g.breaker.cool_down == 0.0  # busy is not broken

    waiting = asyncio.create_task(g.commit(BatchKey("u", "r", 1, 4), succeed()))
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*running, waiting) == [Committed(duplicate=False)] * 3
    assert (started, g.in_flight) == (2, 0)


async def test_a_session_cancelled_mid_commit_leaves_the_commit_to_finish_and_close_waits_for_it() -> None:
    g = gate(Clock())
    release = asyncio.Event()
    finished = []

    async def slow() -> bool:
        await release.wait()
        finished.append(True)
        return True

    session = asyncio.create_task(g.commit(KEY, slow))
    await asyncio.sleep(0)
    session.cancel()
    with pytest.raises(asyncio.CancelledError):
        await session
    assert g.in_flight == 1  # the transaction runs on, whole

    closing = asyncio.create_task(g.close(timeout=5.0))
    await asyncio.sleep(0)
    assert not closing.done()
    release.set()
    assert await closing == 0 and finished == [True]
    # Closed: nothing more reaches the database.
    assert await g.commit(KEY, untouched()) == Throttled(1000, "gateway shutting down; send to another gateway")


async def test_a_batch_waiting_for_a_slot_when_the_breaker_opens_is_throttled_not_tried() -> None:
    clock = Clock()
    g = gate(clock, max_in_flight=1)
    release = asyncio.Event()

    async def fails_when_released() -> bool:
        await release.wait()
        raise errors.Unavailable("connection was closed")

    first = asyncio.create_task(g.commit(BatchKey("u", "r", 1, 1), fails_when_released))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(g.commit(BatchKey("u", "r", 1, 2), untouched()))
    await asyncio.sleep(0)
    release.set()

    assert await first == Throttled(1000, "inventory database unavailable; results stay in the spool")
    assert await waiting == Throttled(1000, "inventory database unavailable; cooling down")
    assert g.in_flight == 0
