"""The tick loop outlives any number of failed ticks and returns to its interval when they stop."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from structlog.testing import capture_logs

from services.scheduler.ticker import MAX_RETRY_SECONDS, Ticker

FAILURES = 5000
INTERVAL = 1.0
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
WAIT = 5.0


class NothingDue:
    """A read transaction that finds no work."""

    async def due_schedules(self, now: datetime) -> list[Any]:
        return []

    async def overdue_runs(self, before: datetime) -> list[Any]:
        return []

    async def expired_leases(self, now: datetime, limit: int) -> list[Any]:
        return []

    async def soonest_due_after(self, now: datetime) -> datetime | None:
        return None


class FlakyStore:
    """Every read fails while `failures` remain; after that it reads an empty schedule."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.reads = 0

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[NothingDue]:
        self.reads += 1
        if self.reads <= self.failures:
            raise ConnectionRefusedError("database is down")
        yield NothingDue()


class RecordedSleeps:
    """Stands in for `asyncio.sleep`: records each pause and only yields to the loop."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def __call__(self, pause: float) -> None:
        self.pauses.append(pause)
        await asyncio.sleep(0)


async def test_five_thousand_failed_ticks_leave_the_loop_alive_and_it_ticks_on_time_once_they_stop() -> None:
    store = FlakyStore(FAILURES)
    sleeps = RecordedSleeps()
    ticker = Ticker(store, hub=None, clock=lambda: NOW, sleep=sleeps, rng=random.Random(11))  # type: ignore[arg-type]
    with capture_logs() as logs:
        task = asyncio.create_task(ticker.run(INTERVAL))
        async with asyncio.timeout(WAIT):
            while len(sleeps.pauses) < FAILURES + 3:
                await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    failed = [e for e in logs if e["event"] == "tick_failed"]
    assert len(failed) == FAILURES and failed[-1]["failures"] == FAILURES
    retries, recovered = sleeps.pauses[:FAILURES], sleeps.pauses[FAILURES:]
    assert max(retries) <= MAX_RETRY_SECONDS
    assert min(retries) >= INTERVAL - 0.1  # never sooner than a normal tick (less the tick's own time)
    assert max(retries[-100:]) > MAX_RETRY_SECONDS / 2  # still backing off, not pinned low
    assert all(INTERVAL - 0.1 <= pause <= INTERVAL for pause in recovered)  # back to the interval
