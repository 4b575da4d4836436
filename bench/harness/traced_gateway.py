"""Where a gateway session's memory goes: the gateway under tracemalloc, snapshots on demand.

Run as a child in place of `outpost-gateway` (`python bench/harness/traced_gateway.py
<gateway flags>`): it starts tracemalloc, then runs the gateway's own `main()`
unchanged. SIGUSR1 dumps a snapshot to `$OUTPOST_BENCH_SNAPSHOT` (written atomically via
rename), which the bench compares before and after N sessions with `growth()`.

tracemalloc sees only the Python heap (objects, frames, bytes); grpc core, upb protobuf
arenas, OpenSSL and libc buffers allocate outside it. So RSS growth minus traced growth
is the native share. A traced gateway is slower and larger: never quote its RSS.
"""

from __future__ import annotations

import asyncio
import linecache
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

SNAPSHOT_ENV = "OUTPOST_BENCH_SNAPSHOT"
FRAMES = 16
REPO = str(Path(__file__).resolve().parents[2]) + os.sep


def _dump(_signum: int, _frame: object) -> None:
    target = Path(os.environ[SNAPSHOT_ENV])
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap*")]
    )
    tmp = target.with_suffix(".tmp")
    snapshot.dump(str(tmp))
    tmp.replace(target)


async def take_snapshot(pid: int, path: Path, timeout: float = 60.0) -> tracemalloc.Snapshot:
    """Ask the traced gateway `pid` (whose env names `path`) for a snapshot and load it."""
    _request_snapshot(pid, path)
    deadline = time.monotonic() + timeout
    while (snapshot := _load_snapshot(path)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no tracemalloc snapshot from pid {pid} after {timeout:g}s")
        await asyncio.sleep(0.1)
    return snapshot


def _request_snapshot(pid: int, path: Path) -> None:
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)


def _load_snapshot(path: Path) -> tracemalloc.Snapshot | None:
    return tracemalloc.Snapshot.load(str(path)) if path.exists() else None


def growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, per: int, top: int = 20) -> dict[str, Any]:
    """Traced growth per session: in total, by allocating line, and by the Outpost code behind it.

    `by_outpost_line` charges each allocation to the innermost frame in Outpost's own code
    (services/, libs/) on its stack, e.g. the line that created a queue rather than the
    line inside asyncio that allocated its deque; allocations with no Outpost frame
    (the transport library serving the connection) are charged to that library.
    """
    total = sum(s.size for s in after.statistics("filename")) - sum(s.size for s in before.statistics("filename"))
    lines = [
        {
            "where": _where(diff.traceback[-1]),
            "bytes_per_session": round(diff.size_diff / per),
            "blocks_per_session": round(diff.count_diff / per, 2),
        }
        for diff in after.compare_to(before, "lineno")[:top]
    ]
    owners: dict[str, int] = {}
    for diff in after.compare_to(before, "traceback"):
        owner = _owner(diff.traceback)
        owners[owner] = owners.get(owner, 0) + diff.size_diff
    ranked = sorted(owners.items(), key=lambda item: -item[1])[:top]
    return {
        "traced_bytes_per_session": round(total / per),
        "frames": FRAMES,
        "top_lines": lines,
        "by_outpost_line": [{"where": where, "bytes_per_session": round(size / per)} for where, size in ranked],
    }


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename.replace(REPO, "").split("site-packages" + os.sep)[-1].split(f"python3.11{os.sep}")[-1]
    return f"{name}:{frame.lineno}"


def _owner(traceback: tracemalloc.Traceback) -> str:
    # Walk from the allocation outwards. A session's coroutines run straight from the
    # event loop's Handle._run, so reaching that frame first means the allocation was
    # made by a loop callback: the transport library (asyncio streams, aiohttp, grpc aio).
    for frame in reversed(traceback):
        if frame.filename.endswith(f"asyncio{os.sep}events.py"):
            break
        if frame.filename.startswith(REPO) and f"{os.sep}bench{os.sep}" not in frame.filename:
            code = linecache.getline(frame.filename, frame.lineno).strip()
            return f"{_where(frame)}  {code}"
    return f"transport library / event loop ({_where(traceback[-1]).split(os.sep)[0]})"


def main() -> None:
    # Import first, then trace: sessions are what is measured, and tracing every import
    # of the gateway's dependencies makes start-up take close to a minute.
    from services.gateway.app import main as gateway_main

    tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, _dump)
    sys.argv[0] = "outpost-gateway"
    gateway_main(sys.argv[1:])


if __name__ == "__main__":
    main()
