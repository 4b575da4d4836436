"""A scan worker process: the TCP connect scan of whole hosts, for the collector that started it.

    python -m services.collector.discovery.scan_worker      (work on stdin, results on stdout)

One Python thread cannot beat nmap on a fast network: the kernel's connect work is as
large as the interpreter's, and a second thread only trades the GIL back and forth
(docs/benchmarks.md). Worker processes put the kernel work on more cores. Each runs the
same `connect_worker` pool as the engine does in process, on the hosts it is given.

The protocol is JSON lines. The first line on stdin is the run's settings,
`{"ports": [...], "concurrency": n, "timeout": seconds}`; every line after it is one
address. When the last of a host's ports has an answer (or timed out), one line goes to
stdout: `{"ip": ..., "open": [...], "filtered": [...], "answered": bool, "rtt_ms": float
or null}` — a host is reported whole or not at all, so a worker that dies leaves hosts
that can be scanned again from scratch. Closing stdin means no more hosts: the worker
finishes what it holds and exits with 0.

It imports only the connect scan (asyncio, socket, json): ~20 MiB of RSS, against the
collector's ~60 (bench/collector_scan_rss.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import BinaryIO

from services.collector.discovery.connect_scan import HostScan, PortFeed, connect_worker
from services.collector.discovery.limiter import ProbeLimiter


def host_result(host: HostScan) -> bytes:
    """The line that reports a finished host."""
    return (
        json.dumps(
            {
                "ip": host.ip,
                "open": host.open_ports,
                "filtered": host.filtered_ports,
                "answered": host.answered,
                "rtt_ms": host.tcp_rtt_ms,
            },
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )


async def serve(reader: asyncio.StreamReader, out: BinaryIO) -> None:
    """Scan the hosts read from `reader` (after the settings line), reporting each to `out`."""
    settings = json.loads(await reader.readline())
    ports = tuple(int(port) for port in settings["ports"])
    concurrency, timeout = int(settings["concurrency"]), float(settings["timeout"])
    feed = PortFeed(ports)
    limiter = ProbeLimiter(concurrency)

    async def report(host: HostScan) -> None:
        await host.tcp_done.wait()
        out.write(host_result(host))
        out.flush()

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(connect_worker(feed, limiter, timeout))
        while line := await reader.readline():
            host = HostScan(line.decode("ascii").strip(), pending=len(ports))
            feed.add(host)
            group.create_task(report(host))
        feed.close()


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await serve(reader, sys.stdout.buffer)


if __name__ == "__main__":
    asyncio.run(_main())
