"""Server-side time for what a collector observed: its clock corrected by the skew we measure.

A collector stamps every envelope it writes with its wall clock (`sent_at_unix_ms`), and
the session measures its skew as `sent_at - our clock at arrival`
(`services.gateway.sessions.collector_status.clock_skew_ms`), on every frame, the result batch's
own frame included. A time the collector reports (a device's `observed_at_unix_ms`, a
batch's) becomes server time by subtracting that skew, and is then bounded: never later
than when the gateway received the batch. Nothing the collector claims can place an
observation in the gateway's future, so one collector's wrong clock cannot make its
sightings outrank another's, and the inventory orders every observation by one clock.

Limits, said in docs/inventory.md: the skew is the one measured *now*; a batch spooled
while the collector's clock was wrong and sent after it was fixed is corrected by the new
skew, so it counts as later than it was (at most as late as its arrival). The skew also
includes the frame's transit time, which only moves a time later, within the bound.
"""

from __future__ import annotations

from datetime import UTC, datetime

MIN_UNIX_MS = 1
MAX_UNIX_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last time a datetime holds."""


def server_time(collector_unix_ms: int, *, clock_skew_ms: int, received_at: datetime) -> datetime | None:
    """`collector_unix_ms` (collector clock) in server time, at most `received_at`; None if not said.

    `clock_skew_ms` is the collector's clock minus ours (positive: it runs ahead).
    `received_at` must be timezone-aware. A value <= 0 means the collector did not say.
    """
    if collector_unix_ms < MIN_UNIX_MS:
        return None
    corrected = min(max(collector_unix_ms - clock_skew_ms, MIN_UNIX_MS), MAX_UNIX_MS)
    at = datetime.fromtimestamp(corrected / 1000, UTC)
    return min(at, received_at)
