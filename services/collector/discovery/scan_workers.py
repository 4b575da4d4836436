"""The collector's side of the scan worker processes: hand them whole hosts, take back results.

`ScanWorkers` starts `count` processes of `scan_worker.py` for one run, gives each host
to the worker holding the fewest (so the port feed is shared by host), and fills in the
engine's `HostScan` from the line the worker sends when it is done with that host. The
rest of a host's work (ICMP, SNMP, banners, DNS, SSH) stays in the engine.

A worker that exits before reporting every host it holds (killed, out of memory, a
crash) is logged (`scan_worker_lost`, with its exit code and how many hosts it held) and
those hosts go to `on_lost`, which scans them again in the collector process: no host is
lost, and none is reported twice, since a worker reports a host whole or not at all. Once
every worker is gone, `submit` says no and the engine scans in process.

`close()` ends the workers (stdin closed; SIGKILL for any still running after
`STOP_SECONDS`, and at once when the run was cancelled) and waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from services.collector.discovery.connect_scan import HostScan

log = structlog.get_logger(__name__)

STOP_SECONDS = 5.0
WORKER_MODULE = "services.collector.discovery.scan_worker"
WORKER_COMMAND = (sys.executable, "-m", WORKER_MODULE)
MAX_SCAN_WORKERS = 64
# One process: each worker costs ~20 MiB of RSS beside the collector's ~60 MiB, and the
# collector's goal is < 60 MB (docs/benchmarks.md); "auto" takes one per usable core.
DEFAULT_SCAN_WORKERS = "1"


def parse_scan_workers(text: str) -> int:
    """`--scan-workers`: a count (1 = in process), or "auto" for one per core this process may use."""
    if text.strip().lower() == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    count = int(text)
    if not 1 <= count <= MAX_SCAN_WORKERS:
        raise ValueError(f"must be 1-{MAX_SCAN_WORKERS} or auto, got {text}")
    return count


@dataclass(eq=False)
class _Worker:
    process: asyncio.subprocess.Process
    holding: dict[str, HostScan] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    alive: bool = True


class ScanWorkers:
    """`count` worker processes scanning whole hosts' TCP ports for one run."""

    def __init__(
        self,
        count: int,
        ports: tuple[int, ...],
        concurrency: int,
        timeout: float,
        on_lost: Callable[[list[HostScan]], None],
    ) -> None:
        if count < 1 or concurrency < count or not ports:
            raise ValueError("scan workers need ports, and at least one connect slot each")
        self.count = count
        self._settings = json.dumps(
            {"ports": list(ports), "concurrency": concurrency // count, "timeout": timeout}
        ).encode()
        self._on_lost = on_lost
        self._workers: list[_Worker] = []
        self._closing = False
        self.lost = 0  # workers that exited holding hosts

    async def start(self) -> None:
        for _ in range(self.count):
            process = await asyncio.create_subprocess_exec(
                *WORKER_COMMAND,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert process.stdin is not None
            process.stdin.write(self._settings + b"\n")
            worker = _Worker(process)
            worker.reader = asyncio.create_task(self._read(worker), name=f"scan-worker-{process.pid}")
            self._workers.append(worker)

    def submit(self, host: HostScan) -> bool:
        """Give `host` to the least busy live worker; False when none is left."""
        live = [worker for worker in self._workers if worker.alive]
        if not live:
            return False
        worker = min(live, key=lambda w: len(w.holding))
        assert worker.process.stdin is not None
        worker.holding[host.ip] = host
        worker.process.stdin.write(host.ip.encode("ascii") + b"\n")
        return True

    def no_more_hosts(self) -> None:
        """Every host has been submitted: workers finish what they hold, then exit."""
        for worker in self._workers:
            if worker.process.stdin is not None and not worker.process.stdin.is_closing():
                worker.process.stdin.close()

    async def close(self) -> None:
        """End every worker and wait for it (SIGKILL after STOP_SECONDS, or at once if cancelled)."""
        self._closing = True
        self.no_more_hosts()
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await asyncio.gather(*(worker.process.wait() for worker in self._workers))
        except TimeoutError:
            log.warning("scan_workers_killed", note=f"still running {STOP_SECONDS:g}s after the scan ended")
        finally:  # also when the run is cancelled: nothing outlives it
            for worker in self._workers:
                _kill(worker.process)
                await worker.process.wait()
            readers = [worker.reader for worker in self._workers if worker.reader is not None]
            for reader in readers:
                reader.cancel()
            if readers:
                await asyncio.wait(readers)

    async def _read(self, worker: _Worker) -> None:
        stdout = worker.process.stdout
        assert stdout is not None
        try:
            while line := await stdout.readline():
                result = json.loads(line)
                host = worker.holding.pop(result["ip"])
                host.complete(result["open"], result["filtered"], result["answered"], result["rtt_ms"])
        except (ValueError, KeyError) as exc:  # a worker that says nonsense is as good as dead
            log.error("scan_worker_garbled", pid=worker.process.pid, error=str(exc))
            _kill(worker.process)
        worker.alive = False
        code = await worker.process.wait()
        if worker.holding and not self._closing:
            self.lost += 1
            hosts = list(worker.holding.values())
            worker.holding.clear()
            log.warning("scan_worker_lost", pid=worker.process.pid, exit_code=code, hosts_rescanned=len(hosts))
            self._on_lost(hosts)


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
