"""Start the processes a benchmark measures, read their ports, weigh them, stop them.

A lean cousin of `tests/process_harness.py` for bench scripts: every child writes a ready
file (services: `--ready-file`; bare servers: the same format), the bench waits on it,
never on sleeps, and stops each child by its own pid. Logs land in the run's temp dir
and their tail is printed when a child fails to start.

`settled_rss` is how every memory figure is taken: the resident set of one pid, sampled
until it stops moving (bounded in time), so a figure is never taken mid-allocation.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.credentials import Credentials
from outpost.db import default_sqlite_url
from outpost.ready import read_ready_file

BIN = Path(sys.executable).parent
READY_TIMEOUT = 60.0


@dataclass
class Child:
    """One child process started by the bench, stopped by its pid only."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_ready(self, ready_file: Path, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """The child's ready file once written; RuntimeError with its log if it dies or stalls."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                code = self.popen.returncode if self.popen else "?"
                raise RuntimeError(f"{self.name} exited early with {code}:\n{self.log_tail()}")
            ready = read_ready_file(ready_file)
            if ready:
                return ready
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.05)


@dataclass
class ControlPlane:
    """A registry (SQLite in `workdir`) and one gateway at a time, as real processes.

    Gateways that dial a scheduler (`--scheduler` in their `--help`) get one, started
    with the registry; older gateways run without it. Every process runs with the
    credentials of `harness.credentials` (`credentials.admin_token` for admin calls).
    """

    workdir: Path
    heartbeat_interval: int = 30
    registry: Child | None = None
    scheduler: Child | None = None
    gateway: Child | None = None
    registry_ready: dict[str, Any] = field(default_factory=dict)
    scheduler_ready: dict[str, Any] = field(default_factory=dict)
    gateway_ready: dict[str, Any] = field(default_factory=dict)
    gateway_command: list[str] = field(default_factory=lambda: [str(BIN / "outpost-gateway")])
    gateway_env: dict[str, str] = field(default_factory=dict)
    registry_args: list[str] = field(default_factory=list)
    gateway_args: list[str] = field(default_factory=list)
    _gateways_started: int = 0
    _seals: bool | None = None

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.workdir)

    def start_registry(self) -> None:
        ready = self.workdir / "registry.ready"
        self.registry = Child(
            "registry",
            [
                str(BIN / "outpost-registry"),
                "--listen=127.0.0.1:0",
                "--metrics-listen=",
                f"--data-dir={self.workdir}",
                f"--database-url={default_sqlite_url(self.workdir, 'registry')}",
                f"--heartbeat-interval={self.heartbeat_interval}",
                f"--ready-file={ready}",
                "--log-format=json",
                *self.credentials.registry_flags(),
                f"--bootstrap-access-key-file={self.access_key_file}",
                *self.registry_args,
            ],
            self.workdir / "registry.log",
        ).start()
        self.registry_ready = self.registry.wait_ready(ready)
        if "--scheduler" in self._gateway_help():
            self._start_scheduler()

    def _start_scheduler(self) -> None:
        ready = self.workdir / "scheduler.ready"
        self.scheduler = Child(
            "scheduler",
            [
                str(BIN / "outpost-scheduler"),
                "--listen=127.0.0.1:0",
                "--metrics-listen=",
                f"--data-dir={self.workdir}",
                f"--registry={self.registry_ready['grpc']}",
                f"--ready-file={ready}",
                "--log-format=json",
                *self.credentials.scheduler_flags(),
            ],
            self.workdir / "scheduler.log",
        ).start()
        self.scheduler_ready = self.scheduler.wait_ready(ready)

    @property
    def access_key_file(self) -> Path:
        """The bootstrap access key the registry writes on its first start (sealed sessions, ADR 0019)."""
        return self.workdir / "access.key"

    def gateway_seals(self) -> bool:
        """Whether the gateway requires sealed sessions (an older one under comparison may not)."""
        if self._seals is None:
            self._seals = "--allow-first-contact" in self._gateway_help()
        return self._seals

    def _gateway_help(self) -> str:
        done = subprocess.run(
            [*self.gateway_command, "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        return done.stdout

    def start_gateway(self) -> None:
        """A fresh gateway on new free ports (the previous one must be stopped)."""
        assert self.gateway is None or not self.gateway.alive()
        self._gateways_started += 1
        ready = self.workdir / f"gateway-{self._gateways_started}.ready"
        self.gateway = Child(
            "gateway",
            [
                *self.gateway_command,
                "--grpc-listen=127.0.0.1:0",
                "--admin-listen=127.0.0.1:0",
                "--ws-listen=127.0.0.1:0",
                "--tcp-listen=127.0.0.1:0",
                "--metrics-listen=",
                f"--registry={self.registry_ready['grpc']}",
                *([f"--scheduler={self.scheduler_ready['grpc']}"] if self.scheduler_ready else []),
                f"--data-dir={self.workdir}",
                f"--ready-file={ready}",
                "--log-format=json",
                *self.credentials.gateway_flags(),
                *self.gateway_args,
            ],
            self.workdir / f"gateway-{self._gateways_started}.log",
            env=self.gateway_env,
        ).start()
        self.gateway_ready = self.gateway.wait_ready(ready)

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()

    def url(self, transport: str) -> str:
        if transport == "grpc":
            return f"grpc://{self.gateway_ready['grpc']}"
        if transport == "websocket":
            return f"ws://{self.gateway_ready['websocket']}/v1/agent"
        return f"tcp://{self.gateway_ready['tcp']}"

    def stop(self) -> None:
        for child in (self.gateway, self.scheduler, self.registry):
            if child is not None:
                child.stop()


@dataclass(frozen=True)
class RssSample:
    rss: int
    settled: bool
    seconds: float


async def settled_rss(
    pid: int,
    *,
    window: float = 2.0,
    tolerance: int = 128 * 1024,
    timeout: float = 20.0,
    interval: float = 0.2,
    check: Callable[[], None] | None = None,
) -> RssSample:
    """RSS of `pid` once it moved less than `tolerance` bytes over `window` seconds.

    Gives up after `timeout` and returns the last sample with `settled=False`, so a
    process that keeps growing shows in the results instead of hanging the bench.
    `check` runs between samples (e.g. to fail fast if a child died). Async so the
    bench's own collectors keep running while it waits.
    """
    process = psutil.Process(pid)
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    while True:
        now = time.monotonic()
        samples.append((now, process.memory_info().rss))
        recent = [rss for at, rss in samples if at >= now - window]
        covered = now - started >= window
        if covered and max(recent) - min(recent) <= tolerance:
            return RssSample(samples[-1][1], True, now - started)
        if now - started >= timeout:
            return RssSample(samples[-1][1], False, now - started)
        if check is not None:
            check()
        await asyncio.sleep(interval)
