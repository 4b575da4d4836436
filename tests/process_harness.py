"""Start Outpost's real processes on free ports and drive them the way an operator does.

Every process gets `--ready-file` (services) or `--status-file` (collector) and the
tests wait on those files, never on sleeps. Processes are stopped by their own pid only;
their logs land in the test's tmp dir and are printed when a wait fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outpost.ready import read_ready_file

BIN = Path(sys.executable).parent
DEFAULT_TIMEOUT = 20.0


def wait_for(
    condition: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or condition}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        env = {**os.environ, **self.env}
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return events


def wait_ready(process: Process, ready_file: Path, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        if not process.alive():
            code = process.popen.returncode if process.popen else "?"
            raise AssertionError(f"{process.name} exited early with {code}:\n{process.log()[-4000:]}")
        return read_ready_file(ready_file)

    try:
        return wait_for(check, timeout, interval=0.05, what=f"{process.name} ready file")  # type: ignore[no-any-return]
    except AssertionError:
        print(process.log()[-4000:])
        raise


@dataclass
class ControlPlane:
    """Registry, scheduler and gateway as real processes on free ports."""

    workdir: Path
    database_url: str
    heartbeat_interval: int = 2
    registry: Process | None = None
    scheduler: Process | None = None
    gateway: Process | None = None
    registry_ready: dict[str, Any] = field(default_factory=dict)
    scheduler_ready: dict[str, Any] = field(default_factory=dict)
    gateway_ready: dict[str, Any] = field(default_factory=dict)
    gateway_args: list[str] = field(default_factory=list)
    scheduler_args: list[str] = field(default_factory=list)

    def database_args(self) -> list[str]:
        """On SQLite each service keeps its own file under the data dir (the default)."""
        return [] if self.database_url.startswith("sqlite") else ["--database-url", self.database_url]

    def start(self, tls: tuple[Path, Path] | None = None) -> ControlPlane:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "registry.ready"
        self.registry = Process(
            "registry",
            [
                str(BIN / "outpost-registry"),
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--data-dir",
                str(self.workdir),
                *self.database_args(),
                "--heartbeat-interval",
                str(self.heartbeat_interval),
                "--ready-file",
                str(ready),
                "--log-format",
                "json",
            ],
            self.workdir / "registry.log",
        ).start()
        self.registry_ready = wait_ready(self.registry, ready)
        self.start_scheduler()
        tls_args = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
        self.gateway_args = tls_args
        self.start_gateway("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
        return self

    def start_scheduler(self, listen: str = "127.0.0.1:0") -> None:
        ready = self.workdir / "scheduler.ready"
        ready.unlink(missing_ok=True)
        self.scheduler = Process(
            "scheduler",
            [
                str(BIN / "outpost-scheduler"),
                "--listen",
                listen,
                "--metrics-listen",
                "127.0.0.1:0",
                "--data-dir",
                str(self.workdir),
                *self.database_args(),
                "--registry",
                self.registry_ready["grpc"],
                "--ready-file",
                str(ready),
                "--log-format",
                "json",
                *self.scheduler_args,
            ],
            self.workdir / "scheduler.log",
        ).start()
        self.scheduler_ready = wait_ready(self.scheduler, ready)

    def start_gateway(self, grpc: str, ws: str, tcp: str) -> None:
        ready = self.workdir / "gateway.ready"
        ready.unlink(missing_ok=True)
        self.gateway = Process(
            "gateway",
            [
                str(BIN / "outpost-gateway"),
                "--grpc-listen",
                grpc,
                "--ws-listen",
                ws,
                "--tcp-listen",
                tcp,
                "--metrics-listen",
                "127.0.0.1:0",
                "--registry",
                self.registry_ready["grpc"],
                "--scheduler",
                self.scheduler_ready["grpc"],
                "--data-dir",
                str(self.workdir),
                *self.database_args(),
                "--handshake-timeout",
                "3",
                "--drain-seconds",
                "3",
                "--ready-file",
                str(ready),
                "--log-format",
                "json",
                *self.gateway_args,
            ],
            self.workdir / "gateway.log",
        ).start()
        self.gateway_ready = wait_ready(self.gateway, ready)

    def restart_gateway(self) -> None:
        assert self.gateway is not None
        old = self.gateway_ready
        assert self.gateway.stop() == 0, self.gateway.log()[-3000:]
        self.start_gateway(old["grpc"], old["websocket"], old["tcp"])

    def url(self, transport: str, tls: bool = False) -> str:
        if transport == "grpc":
            return f"{'grpcs' if tls else 'grpc'}://{self.gateway_ready['grpc']}"
        if transport == "http_poll":
            return f"{'https' if tls else 'http'}://{self.gateway_ready['websocket']}/v1/poll"
        if transport == "websocket":
            return f"{'wss' if tls else 'ws'}://{self.gateway_ready['websocket']}/v1/agent"
        return f"{'tls' if tls else 'tcp'}://{self.gateway_ready['tcp']}"

    def ctl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                str(BIN / "outpostctl"),
                "--registry",
                self.registry_ready["grpc"],
                "--gateway",
                self.gateway_ready.get("grpc", "127.0.0.1:1"),
                "--scheduler",
                self.scheduler_ready.get("grpc", "127.0.0.1:1"),
                *args,
            ],
            input=stdin,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "OUTPOST_ACTOR": "e2e-admin"},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"outpostctl {' '.join(args)} failed ({result.returncode}): {result.stderr}{result.stdout}"
            )
        return result

    def collectors(self) -> list[dict[str, Any]]:
        return json.loads(self.ctl("collectors", "list", "--json").stdout)  # type: ignore[no-any-return]

    def stop(self) -> None:
        for process in (self.gateway, self.scheduler, self.registry):
            if process is not None:
                process.stop()


@dataclass
class Collector:
    """The real `outpost-collector` process."""

    workdir: Path
    name: str
    servers: list[str]
    password: str
    username: str = "svc-outpost"
    zone: str = "lab"
    extra_args: list[str] = field(default_factory=list)
    process: Process | None = None

    @property
    def data_dir(self) -> Path:
        return self.workdir / f"collector-{self.name}"

    @property
    def status_file(self) -> Path:
        return self.workdir / f"collector-{self.name}.status"

    def start(self) -> Collector:
        self.workdir.mkdir(parents=True, exist_ok=True)
        password_file = self.workdir / f"{self.name}.password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        self.status_file.unlink(missing_ok=True)
        args = [
            str(BIN / "outpost-collector"),
            *(arg for url in self.servers for arg in ("--server", url)),
            "--name",
            self.name,
            "--zone",
            self.zone,
            "--username",
            self.username,
            "--password-file",
            str(password_file),
            "--data-dir",
            str(self.data_dir),
            "--status-file",
            str(self.status_file),
            "--backoff-initial",
            "0.1",
            "--backoff-max",
            "1",
            "--log-format",
            "json",
            *self.extra_args,
        ]
        self.process = Process(f"collector {self.name}", args, self.workdir / f"collector-{self.name}.log").start()
        return self

    def status(self) -> dict[str, Any]:
        return read_ready_file(self.status_file) or {}

    def wait_state(self, state: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            assert self.process is not None
            if not self.process.alive():
                raise AssertionError(f"collector exited: {self.process.log()[-3000:]}")
            status = self.status()
            return status if status.get("state") == state else None

        try:
            return wait_for(check, timeout, what=f"collector {self.name} state {state}")  # type: ignore[no-any-return]
        except AssertionError:
            assert self.process is not None
            print(self.process.log()[-3000:])
            raise

    def stop(self) -> int | None:
        return self.process.stop() if self.process else None
