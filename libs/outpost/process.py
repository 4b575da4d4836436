"""Process basics every Outpost program shares, kept free of heavy imports.

The collector runs on small machines in other people's networks: importing this must
not pull in gRPC server parts, SQLAlchemy or Prometheus (see bench/collector_scan_rss.py).
"""

from __future__ import annotations

import asyncio
import signal

__all__ = ["install_shutdown_signals", "is_loopback"]


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def install_shutdown_signals() -> asyncio.Event:
    """An event set on SIGTERM or SIGINT, so `main` can drain instead of dying mid-write."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
