"""Registry, scheduler and gateway as real processes, on SQLite or PostgreSQL, restartable in place.

`control_plane.ControlPlane` runs one SQLite control plane with a fresh gateway on new
ports each time, waiting synchronously; this plane is for benches whose collectors live
in the same event loop while processes start and stop, so every wait here is async and
never blocks the loop. It also:

- takes a `database_url` (PostgreSQL: every service in its own schema of one database;
  None: each service its own SQLite file in `workdir`, as `make run` does);
- restarts the gateway on the ports it bound the first time (`restart_gateway`), after a
  SIGTERM (the gateway drains) or a SIGKILL, and times each step.

`TempDatabase` creates a fresh PostgreSQL database (`outpost_bench_<random>`) for one run
and drops it again, as the tests' fixtures do. Children are `control_plane.Child`: stopped
by their own pid only, logs in `workdir`.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from harness.control_plane import BIN, READY_TIMEOUT, Child
from harness.credentials import Credentials
from outpost.db import default_sqlite_url
from outpost.ready import read_ready_file

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


# --- a throwaway PostgreSQL database ------------------------------------------------------------
@dataclass
class TempDatabase:
    """`CREATE DATABASE outpost_bench_<random>` on the admin DSN's server; `drop()` removes it."""

    admin_dsn: str = ADMIN_DSN
    name: str = field(default_factory=lambda: f"outpost_bench_{uuid.uuid4().hex[:12]}")
    created: bool = False

    @property
    def dsn(self) -> str:
        """For asyncpg."""
        return f"{self.admin_dsn.rsplit('/', 1)[0]}/{self.name}"

    @property
    def url(self) -> str:
        """For the services (SQLAlchemy with asyncpg)."""
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def create(self) -> TempDatabase:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
            self.created = True
        finally:
            await conn.close()
        return self

    async def drop(self) -> None:
        if not self.created:
            return
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False
        finally:
            await conn.close()

    def drop_blocking(self) -> None:
        """For a `finally` outside any event loop."""
        if self.created:
            asyncio.run(self.drop())


# --- async process helpers ----------------------------------------------------------------------
async def wait_ready(child: Child, ready_file: Path, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    """The child's ready file once written, polled without blocking the loop."""
    deadline = time.monotonic() + timeout
    while True:
        if not child.alive():
            code = child.popen.returncode if child.popen else "?"
            raise RuntimeError(f"{child.name} exited early with {code}:\n{child.log_tail()}")
        ready = read_ready_file(ready_file)
        if ready:
            return ready
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} not ready after {timeout:g}s:\n{child.log_tail()}")
        await asyncio.sleep(0.02)


async def wait_exit(child: Child, timeout: float) -> int | None:
    """The exit code once the child has exited, or None after `timeout`."""
    assert child.popen is not None
    deadline = time.monotonic() + timeout
    while (code := child.popen.poll()) is None:
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.01)
    return code


async def stop_async(child: Child, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
    """Send `sig` to the child's pid, wait for it to exit; SIGKILL after `timeout`."""
    if child.popen is None or child.popen.poll() is not None:
        return child.popen.returncode if child.popen else None
    child.popen.send_signal(sig)
    code = await wait_exit(child, timeout)
    if code is None:
        child.popen.kill()
        code = await wait_exit(child, 10)
    return code


# --- the plane ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Restart:
    """One gateway restart on the same ports, on the bench's monotonic clock."""

    signal: str
    signalled_at: float
    exited_at: float
    exit_code: int | None
    started_at: float
    ready_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "exit_code": self.exit_code,
            "signal_to_exit_seconds": round(self.exited_at - self.signalled_at, 3),
            "start_to_ready_seconds": round(self.ready_at - self.started_at, 3),
            "gateway_down_seconds": round(self.ready_at - self.signalled_at, 3),
        }


@dataclass
class Plane:
    """Registry, scheduler and gateway; `database_url` None means SQLite files in `workdir`.

    Every process runs with the credentials of `harness.credentials`; the gateway's admin
    listener (inventory, sessions) is `gateway_ready["admin"]`, kept across restarts.
    """

    workdir: Path
    database_url: str | None = None
    heartbeat_interval: int = 30
    gateway_args: list[str] = field(default_factory=list)
    registry_args: list[str] = field(default_factory=list)
    metrics: bool = False
    """Serve /metrics on a free port (its address in the ready file as "metrics")."""
    registry: Child | None = None
    scheduler: Child | None = None
    gateway: Child | None = None
    registry_ready: dict[str, Any] = field(default_factory=dict)
    scheduler_ready: dict[str, Any] = field(default_factory=dict)
    gateway_ready: dict[str, Any] = field(default_factory=dict)
    gateways_started: int = 0

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.workdir)

    def _database(self, service: str) -> str:
        return self.database_url or default_sqlite_url(self.workdir, service)

    def _common(self, service: str, ready: Path) -> list[str]:
        return [
            "--metrics-listen=127.0.0.1:0" if self.metrics else "--metrics-listen=",
            f"--data-dir={self.workdir}",
            f"--database-url={self._database(service)}",
            f"--ready-file={ready}",
            "--log-format=json",
        ]

    async def start(self) -> Plane:
        """Registry, then scheduler, then a gateway on free ports."""
        ready = self.workdir / "registry.ready"
        self.registry = Child(
            "registry",
            [
                str(BIN / "outpost-registry"),
                "--listen=127.0.0.1:0",
                f"--heartbeat-interval={self.heartbeat_interval}",
                *self._common("registry", ready),
                *self.credentials.registry_flags(),
                f"--bootstrap-access-key-file={self.access_key_file}",
                *self.registry_args,
            ],
            self.workdir / "registry.log",
        ).start()
        self.registry_ready = await wait_ready(self.registry, ready)
        ready = self.workdir / "scheduler.ready"
        self.scheduler = Child(
            "scheduler",
            [
                str(BIN / "outpost-scheduler"),
                "--listen=127.0.0.1:0",
                f"--registry={self.registry_ready['grpc']}",
                *self._common("scheduler", ready),
                *self.credentials.scheduler_flags(),
            ],
            self.workdir / "scheduler.log",
        ).start()
        self.scheduler_ready = await wait_ready(self.scheduler, ready)
        await self.start_gateway()
        return self

    def _spawn_gateway(self, grpc: str, ws: str, tcp: str, admin: str) -> tuple[Child, Path]:
        self.gateways_started += 1
        ready = self.workdir / f"gateway-{self.gateways_started}.ready"
        child = Child(
            "gateway",
            [
                str(BIN / "outpost-gateway"),
                f"--grpc-listen={grpc}",
                f"--admin-listen={admin}",
                f"--ws-listen={ws}",
                f"--tcp-listen={tcp}",
                f"--registry={self.registry_ready['grpc']}",
                f"--scheduler={self.scheduler_ready['grpc']}",
                *self._common("gateway", ready),
                *self.credentials.gateway_flags(),
                *self.gateway_args,
            ],
            self.workdir / f"gateway-{self.gateways_started}.log",
        ).start()
        return child, ready

    async def start_gateway(self) -> None:
        """A gateway on free ports; `restart_gateway` reuses them."""
        self.gateway, ready = self._spawn_gateway("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
        self.gateway_ready = await wait_ready(self.gateway, ready)

    async def restart_gateway(self, sig: int, drain_timeout: float = 60.0) -> Restart:
        """Signal the gateway (SIGTERM drains, SIGKILL does not), then start it again on its ports.

        The new process is spawned the moment the old one has exited, as a service
        manager with an immediate restart would.
        """
        assert self.gateway is not None
        old = self.gateway_ready
        signalled = time.monotonic()
        code = await stop_async(self.gateway, sig, drain_timeout)
        exited = time.monotonic()
        self.gateway, ready = self._spawn_gateway(old["grpc"], old["websocket"], old["tcp"], old["admin"])
        started = time.monotonic()
        self.gateway_ready = await wait_ready(self.gateway, ready)
        return Restart(signal.Signals(sig).name, signalled, exited, code, started, time.monotonic())

    @property
    def access_key_file(self) -> Path:
        """The bootstrap access key the registry writes on its first start: every session is sealed with it."""
        return self.workdir / "access.key"

    def url(self, transport: str) -> str:
        if transport == "grpc":
            return f"grpc://{self.gateway_ready['grpc']}"
        if transport == "websocket":
            return f"ws://{self.gateway_ready['websocket']}/v1/agent"
        return f"tcp://{self.gateway_ready['tcp']}"

    def check_alive(self) -> None:
        """RuntimeError with its log if any service has died."""
        for child in (self.registry, self.scheduler, self.gateway):
            if child is not None and not child.alive():
                raise RuntimeError(
                    f"{child.name} died ({child.popen.returncode if child.popen else '?'}):\n{child.log_tail()}"
                )

    def stop(self) -> None:
        """Stop every child by its pid (blocking; for `finally`)."""
        for child in (self.gateway, self.scheduler, self.registry):
            if child is not None:
                child.stop()
