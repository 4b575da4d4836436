"""The shared capped full-jitter backoff: windows, spread, cap, reset, determinism."""

from __future__ import annotations

import random

import pytest

from outpost.backoff import Backoff


def seeded(initial: float = 0.5, maximum: float = 30.0, seed: int = 7) -> Backoff:
    return Backoff(initial, maximum, random.Random(seed))


def test_each_delay_is_full_jitter_below_a_doubling_ceiling() -> None:
    backoff = seeded()
    ceilings = [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    for ceiling in ceilings:
        assert backoff.ceiling() == ceiling
        assert 0.0 <= backoff.next_delay() <= ceiling


def test_delays_are_spread_over_the_window_not_pinned_to_its_top() -> None:
    backoff = seeded(seed=1)
    backoff.attempt = 10  # capped at 30 s
    delays = [backoff.next_delay() for _ in range(200)]
    assert max(delays) <= 30.0
    assert min(delays) < 3.0 and max(delays) > 27.0


class TopOfWindow(random.Random):
    """A random source that always picks the top of the window: the worst case for the cap."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize(("initial", "maximum"), [(0.5, 30.0), (0.2, 5.0), (1e-9, 1e9), (1.0, 1.0)])
def test_five_thousand_consecutive_failures_stay_under_the_cap_and_never_overflow(
    initial: float, maximum: float
) -> None:
    backoff = Backoff(initial, maximum, TopOfWindow())
    delays = [backoff.next_delay() for _ in range(5000)]
    assert max(delays) == maximum
    assert all(0.0 < d <= maximum for d in delays)
    assert backoff.attempt < 100  # the exponent stopped growing at the cap
    backoff.reset()
    assert backoff.next_delay() == initial


def test_an_attempt_count_set_far_past_the_cap_does_not_overflow() -> None:
    backoff = seeded(initial=0.2, maximum=5.0)
    backoff.attempt = 5000  # 0.2 * 2.0**5000 would raise OverflowError
    assert backoff.ceiling() == 5.0
    assert backoff.next_delay() <= 5.0


def test_reset_starts_again_from_the_initial_window() -> None:
    backoff = seeded()
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling() == 0.5
    assert backoff.next_delay() <= 0.5


def test_the_same_seed_gives_the_same_delays() -> None:
    first, second = seeded(seed=3), seeded(seed=3)
    assert [first.next_delay() for _ in range(10)] == [second.next_delay() for _ in range(10)]


@pytest.mark.parametrize(
    ("initial", "maximum"), [(0.0, 30.0), (-1.0, 30.0), (5.0, 1.0), (1.0, float("inf")), (float("nan"), 1.0)]
)
def test_inconsistent_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="0 < initial <= maximum"):
        Backoff(initial, maximum)
