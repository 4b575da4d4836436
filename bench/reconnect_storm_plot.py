"""Plot reconnect storms side by side: collectors live again vs seconds since the new gateway was ready.

    .venv/bin/python bench/reconnect_storm_plot.py OUT.png LABEL=bench/results/a.json LABEL=bench/results/b.json

One curve per (file, restart variant): the cumulative number of collectors live again
per second since the restarted gateway was ready (`handshakes_per_second.buckets_from_ready`
of `bench/reconnect_storm.py`'s JSON). Needs matplotlib (`make bench` installs the
`bench` extra).
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path


def curves(label: str, path: Path) -> list[tuple[str, list[int]]]:
    result = json.loads(path.read_text())
    found = []
    for variant, figure in result.get("restarts", {}).items():
        buckets = figure["handshakes_per_second"]["buckets_from_ready"]
        found.append((f"{label} {variant}", list(itertools.accumulate(buckets))))
    return found


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(sys.argv[1])
    series = []
    for argument in sys.argv[2:]:
        label, _, path = argument.partition("=")
        series += curves(label, Path(path))
    fig, ax = plt.subplots(figsize=(9, 5.2))
    for name, values in series:
        ax.plot(range(len(values) + 1), [0, *values], label=name, linewidth=2)
    ax.set_xlabel("seconds since the restarted gateway was ready")
    ax.set_ylabel("collectors live again (cumulative)")
    ax.set_title("Reconnect storm: known collectors back after a gateway restart")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
