"""What every result records about where it was measured; the fd limit; the table format;
how a script ends (table printed, JSON written)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

import outpost


def raise_fd_limit(want: int = 0) -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit; children (the gateway too) inherit it.

    With `want`, the hard limit too is raised to `want` where the process may (root, or
    CAP_SYS_RESOURCE); otherwise it stays, and the returned limits say what there is.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if want > hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def machine() -> dict[str, Any]:
    """Date, CPU, memory, Python, load, and which commit of which tree was measured."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    code = Path(outpost.__file__).resolve().parents[2]  # libs/outpost/__init__.py -> the tree

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(code), *args], capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return done.stdout.strip()

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "code": str(code),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    """`rows[0]` is the header; columns padded so the table reads in a terminal too."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def finish(results: dict[str, Any], table: str, path: Path, started: float) -> None:
    """Stamp the wall time, print the table, write every raw number to `path` as JSON."""
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    print()
    print(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path} ({results['wall_seconds']:.0f}s)")
