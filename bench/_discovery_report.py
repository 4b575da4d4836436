"""What the discovery benches share: medians and spreads over repeats, percentiles, the JSON.

Every figure is repeated (the bench machine has two cores shared with other work), so a
figure is a `Spread`: median, min and max over the repeats, with the raw values kept in
the JSON. What the machine was (`harness.machine.machine()`) is recorded at the start of
a run; `write_results` adds the load average at its end.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Spread:
    """A figure over repeats: its median, min and max, and the raw values."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("a spread needs at least one value")
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def text(self, digits: int = 2, unit: str = "") -> str:
        """'0.81 (0.74-0.97)': median, then min-max."""
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f})"

    def as_json(self, digits: int = 4) -> dict[str, Any]:
        return {
            "median": round(self.median, digits),
            "min": round(self.low, digits),
            "max": round(self.high, digits),
            "values": [round(v, digits) for v in self.values],
        }


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of `values`."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write the figure's JSON (with the load average at the end of the run added)."""
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
