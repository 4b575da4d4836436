"""Full-jitter exponential backoff with a cap: how long to wait before the next retry.

The n-th consecutive failure waits `uniform(0, min(maximum, initial * 2**n))` seconds
("full jitter", as in the AWS Architecture Blog's "Exponential Backoff And Jitter"): a
fleet that lost the same peer spreads its retries over the window instead of arriving
together. `reset()` after a success, so a loop that was healthy for a while retries
quickly after a single failure.

Every retry loop with a growing delay uses this one class. The exponent stops growing
once the window has reached `maximum`, so a loop can fail forever without the delay
overflowing (`0.2 * 2**1100` raises OverflowError, which used to end the background task
that computed it while health still said SERVING). A loop that must never retry faster
than it normally runs takes `max(interval, backoff.next_delay())`.

No I/O and no clock: the caller sleeps, and tests pass a seeded `random.Random`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Counts consecutive failures and turns them into jittered delays; see the module docstring."""

    initial: float = 0.5
    maximum: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0
    """Consecutive failures counted so far, stopping once the window is capped."""

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum) or not math.isfinite(self.maximum):
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {self.initial:g} and {self.maximum:g}")
        self._capped_at = _exponent_reaching(self.initial, self.maximum)

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.maximum, math.ldexp(self.initial, min(self.attempt, self._capped_at)))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        ceiling = self.ceiling()
        if self.attempt < self._capped_at:
            self.attempt += 1
        return self.rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        """A success: the next failure waits at most `initial` again."""
        self.attempt = 0


def _exponent_reaching(initial: float, maximum: float) -> int:
    """The smallest n with `initial * 2**n >= maximum`: past it the window no longer grows."""
    n = 0
    while math.ldexp(initial, n) < maximum:
        n += 1
    return n
