"""The token bucket, with time passed in, and the probe limiter's slots."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.collector.discovery.limiter import ProbeLimiter, TokenBucket


def test_a_full_bucket_lets_a_burst_through_then_spaces_callers() -> None:
    bucket = TokenBucket(rate=10, capacity=3, now=100.0)

    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(100.0) == pytest.approx(0.1)
    assert bucket.take(100.0) == pytest.approx(0.2)  # the queue behind it waits longer


def test_tokens_come_back_with_time_up_to_the_capacity() -> None:
    bucket = TokenBucket(rate=10, capacity=2, now=0.0)
    bucket.take(0.0)
    bucket.take(0.0)

    assert bucket.take(0.1) == 0.0
    assert bucket.take(60.0) == 0.0
    assert bucket.take(60.0) == 0.0
    assert bucket.take(60.0) == pytest.approx(0.1)


def test_a_clock_that_goes_backwards_adds_nothing() -> None:
    bucket = TokenBucket(rate=1, capacity=1, now=10.0)
    bucket.take(10.0)
    assert bucket.take(5.0) == pytest.approx(1.0)


@given(
    rate=st.integers(1, 1000),
    capacity=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 0.05, allow_nan=False), min_size=1, max_size=300),
)
def test_the_long_run_rate_is_never_exceeded(rate: int, capacity: int, gaps: list[float]) -> None:
    """Callers that wait as told start at most capacity + rate * elapsed connections."""
    bucket = TokenBucket(rate, capacity, now=0.0)
    now, starts = 0.0, []
    for gap in gaps:
        now += gap
        starts.append(now + bucket.take(now))
    for index, start in enumerate(starts):
        assert index + 1 <= capacity + rate * start + 1e-6


def test_nonsense_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, capacity=1, now=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, capacity=0, now=0)


async def test_the_fast_path_takes_only_a_free_slot_and_never_with_a_rate() -> None:
    limiter = ProbeLimiter(2)
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()
    limiter.release()
    assert limiter.try_acquire()
    assert not ProbeLimiter(2, rate_per_second=100).try_acquire()


async def test_a_freed_slot_goes_to_the_longest_waiter_not_to_the_fast_path() -> None:
    limiter = ProbeLimiter(1)
    assert limiter.try_acquire()
    order: list[str] = []

    async def wait(name: str) -> None:
        await limiter.acquire()
        order.append(name)

    first, second = asyncio.create_task(wait("first")), asyncio.create_task(wait("second"))
    await asyncio.sleep(0)
    limiter.release()
    assert not limiter.try_acquire()  # "first" holds the slot now, "second" still queues
    await first
    limiter.release()
    await second
    assert order == ["first", "second"]


async def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() -> None:
    limiter = ProbeLimiter(1)
    await limiter.acquire()
    cancelled, next_in_line = asyncio.create_task(limiter.acquire()), asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # handed to `cancelled`, which is cancelled before it runs
    cancelled.cancel()
    await asyncio.wait([cancelled])
    await asyncio.wait_for(next_in_line, 1)
    limiter.release()
    assert limiter.try_acquire()
    assert not limiter.try_acquire()


async def test_a_cancelled_waiter_leaves_the_queue_and_costs_no_slot() -> None:
    limiter = ProbeLimiter(1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.wait([waiter])
    limiter.release()
    assert limiter.try_acquire()
