"""Process basics every Outpost program shares, kept free of heavy imports.

The collector runs on small machines in other people's networks: importing this must
not pull in gRPC server parts, SQLAlchemy or Prometheus (see bench/collector_scan_rss.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import NoReturn

__all__ = ["exit_now", "install_shutdown_signals", "is_loopback"]


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def install_shutdown_signals() -> asyncio.Event:
    """An event set on SIGTERM or SIGINT, so `main` can drain instead of dying mid-write."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def exit_now(code: int | str | None = 0) -> NoReturn:
    """Leave the process at once with `code` (as `SystemExit` reads it), skipping the
    interpreter's finalization.

    Call it only once everything the program opened is closed (databases, channels, the
    spool) and its last log line is written. Finalization after that does nothing useful
    and is slow: tearing down gRPC core and collecting every module's objects took 2.2 s
    of a core per service on the test machine (0.05 s with this), which a restarting
    gateway's collectors, a `kill`-and-restart under a service manager, and every
    `outpostctl` call would otherwise wait for. `atexit` hooks do not run: Outpost
    registers none.
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or its reader left
            stream.flush()
    os._exit(status)
