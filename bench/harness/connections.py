"""Many connections at a bounded concurrency, timed: the bench's load-generator loop."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ConnectRun:
    """N connections made `in_flight` at a time: per-connection seconds and completion times."""

    durations: list[float] = field(default_factory=list)
    completed_at: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        ms = sorted(d * 1000 for d in self.durations)
        return {
            "connected": len(self.durations),
            "failed": len(self.failures),
            "first_failures": self.failures[:5],
            "wall_seconds": round(self.seconds, 3),
            "median_ms": round(statistics.median(ms), 2) if ms else None,
            "p99_ms": round(_percentile(ms, 99), 2) if ms else None,
            "max_ms": round(ms[-1], 2) if ms else None,
            "mean_per_second": round(len(ms) / self.seconds, 1) if self.seconds else None,
            "peak_per_second": _peak_rate(self.completed_at, 1.0),
        }


def _percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def _peak_rate(times: Iterable[float], window: float) -> int:
    """Most completions in any `window`-second span."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while ordered[start] < at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def connect_all(
    count: int, in_flight: int, open_one: Callable[[int], Awaitable[tuple[float, float]]]
) -> ConnectRun:
    """Run `open_one(i)` for i < count, `in_flight` at a time; it returns (opened, live) times."""
    loop = asyncio.get_running_loop()
    run = ConnectRun()
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with gate:
            try:
                opened, live = await open_one(i)
            except Exception as exc:  # one failed connection is a figure, not a crash
                run.failures.append(f"{type(exc).__name__}: {exc}")
                return
        run.durations.append(live - opened)
        run.completed_at.append(live)

    started = loop.time()
    await asyncio.gather(*(one(i) for i in range(count)))
    run.seconds = loop.time() - started
    return run


async def close_all(closers: Iterable[Callable[[], Awaitable[None]]]) -> None:
    results = await asyncio.gather(*(close() for close in closers), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        print(f"  ({len(failed)} closes failed, first: {failed[0]!r})")
