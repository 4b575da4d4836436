"""The collector's wall clock: what it stamps on envelopes, batches and observations.

Everything the collector tells the server about time (`sent_at_unix_ms`, a batch's and a
device's `observed_at_unix_ms`, the spool's ages) reads this one clock, so a collector
with a wrong clock is wrong consistently, as a real one is, and the gateway's skew
correction (docs/inventory.md, "Time you can trust") sees one skew.

`offset_seconds` is a test aid (`--clock-offset-seconds`, env
`OUTPOST_COLLECTOR_CLOCK_OFFSET_SECONDS`): it makes the collector behave as if its clock
were that far off, e.g. 3600 for one hour ahead, without touching the host's clock.
Leave it at 0 in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class WallClock:
    """Seconds since the epoch, `offset_seconds` off the host's clock; call it like `time.time`."""

    def __init__(self, offset_seconds: float = 0.0, source: Callable[[], float] = time.time) -> None:
        self.offset_seconds = offset_seconds
        self._source = source

    def __call__(self) -> float:
        return self._source() + self.offset_seconds

    def unix_ms(self) -> int:
        return int(self() * 1000)
