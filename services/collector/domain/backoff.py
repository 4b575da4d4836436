"""Full-jitter exponential backoff between connection attempts.

The n-th consecutive failure waits `uniform(0, min(maximum, initial * 2**n))` seconds
("full jitter", as in the AWS Architecture Blog's "Exponential Backoff And Jitter"): a
fleet of collectors that lost the same gateway spreads its reconnects over the window
instead of arriving together. `reset()` after a session was accepted, so a collector that
was healthy for a while reconnects quickly after a single drop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {self.initial:g} and {self.maximum:g}")

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.maximum, self.initial * 2.0**self.attempt)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        ceiling = self.ceiling()
        if ceiling < self.maximum:
            self.attempt += 1  # stop counting once capped: 2**attempt must not overflow
        return self.rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.attempt = 0
