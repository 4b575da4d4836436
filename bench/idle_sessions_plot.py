"""Plot gateway memory per idle session against the number of sessions, beside the bare transports.

    .venv/bin/python bench/idle_sessions_plot.py OUT.png [LABEL=]bench/results/a.json [LABEL=]b.json

One solid line per transport and file (KiB/session at each size of `bench/idle_sessions.py`'s
JSON, `sizes`), one dashed line per bare baseline (from each file; the same bare code
measured twice shows the run-to-run noise). With two files (before/after), the second's
Outpost lines are drawn dash-dotted. Needs matplotlib (`make bench` installs the `bench`
extra).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BARE_FOR = {"grpc": "grpc", "websocket": "websocket", "tcp": "tcp"}
COLORS = {"grpc": "tab:blue", "websocket": "tab:orange", "tcp": "tab:green"}
OUTPOST_STYLES = ["-", "-.", ":"]
MARKERS = ["o", "s", "^"]


def series(result: dict[str, Any]) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, float]]]]:
    """(Outpost KiB/session per transport, bare KiB/conn per kind), each as (sessions, KiB) points."""
    outpost: dict[str, list[tuple[int, float]]] = {}
    bare: dict[str, list[tuple[int, float]]] = {}
    for _count, figures in sorted(result["sizes"].items(), key=lambda item: int(item[0])):
        for transport, figure in figures["outpost"].items():
            if figure["sessions_live"]:
                outpost.setdefault(transport, []).append((figure["sessions_live"], figure["kib_per_session"]))
        for kind, figure in figures["bare"].items():
            if kind in BARE_FOR.values() and figure["kib_per_connection"] is not None:
                bare.setdefault(kind, []).append((figure["connections"], figure["kib_per_connection"]))
    return outpost, bare


def plot(out: Path, files: list[tuple[str, Path]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6.4))
    sizes: set[int] = set()
    for n, (label, path) in enumerate(files):
        result = json.loads(path.read_text())
        name = label or str(result["machine"]["commit"])
        outpost, bare = series(result)
        for transport, points in outpost.items():
            xs, ys = zip(*points, strict=True)
            sizes.update(xs)
            ax.plot(
                xs,
                ys,
                OUTPOST_STYLES[n % len(OUTPOST_STYLES)],
                marker=MARKERS[n % len(MARKERS)],
                color=COLORS.get(transport),
                linewidth=2,
                label=f"Outpost {transport} ({name})",
            )
        for kind, points in bare.items():
            xs, ys = zip(*points, strict=True)
            ax.plot(
                xs,
                ys,
                "--",
                marker="x",
                color=COLORS.get(kind),
                alpha=0.6 if n else 0.9,
                linewidth=1.2,
                label=f"bare {kind} ({name})",
            )
    ax.set_xscale("log")
    ticks = sorted(sizes)
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("idle sessions (connections) held at once")
    ax.set_ylabel("KiB of RSS per session (connection)")
    ax.set_title("Gateway memory per idle session, beside the bare transports")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


def main() -> None:
    files = []
    for argument in sys.argv[2:]:
        label, sep, path = argument.partition("=")
        files.append((label, Path(path)) if sep else ("", Path(label)))
    plot(Path(sys.argv[1]), files)


if __name__ == "__main__":
    main()
