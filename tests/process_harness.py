"""Start Outpost's real processes on free ports and drive them the way an operator does.

Every process gets `--ready-file` (services) or `--status-file` (collector) and the
tests wait on those files, never on sleeps. Processes are stopped by their own pid only;
their logs land in the test's tmp dir and are printed when a wait fails.

A `ControlPlane` may run several gateways and schedulers on one database (`Replica`s):
any of them can be killed (SIGKILL), terminated (SIGTERM, a drain) and restarted on the
ports it had. A `Collector` can be killed and restarted on the same data dir.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outpost.auth.service_tokens import ensure_service_tokens
from outpost.ready import read_ready_file
from tests.conftest import free_port

BIN = Path(sys.executable).parent
DEFAULT_TIMEOUT = 20.0


def wait_for(
    condition: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout`.

    A condition that runs a process (an `outpostctl` call costs a Python start-up) is
    re-checked after as long as it took (at most a second more), not every `interval`:
    polled back to back it would spend a core, which the processes under test need, on
    asking.
    """
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or condition}")
        time.sleep(max(interval, min(time.monotonic() - started, 1.0)))


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


OUTPOST_RUN_LISTENERS = (
    "registry",
    "registry-metrics",
    "scheduler",
    "scheduler-metrics",
    "gateway-grpc",
    "gateway-admin",
    "gateway-ws",
    "gateway-tcp",
    "gateway-metrics",
)
"""Every `--<name>-listen` flag of `outpost-run`: a test gives each a free port, so no
default port of a parallel test (or of a developer's own `make run`) is ever touched."""


def start_outpost_run(
    workdir: Path, env: dict[str, str] | None = None, extra_args: Sequence[str] = ()
) -> tuple[Process, dict[str, int], Path]:
    """`outpost-run` (what `make run` runs) on free ports with its data under `workdir/data`.

    Returns the process, the port of each listener by flag name, and the data directory.
    """
    ports = {name: free_port() for name in OUTPOST_RUN_LISTENERS}
    data_dir = workdir / "data"
    process = Process(
        "outpost-run",
        [
            str(BIN / "outpost-run"),
            "--data-dir",
            str(data_dir),
            "--log-format",
            "json",
            *(arg for name, port in ports.items() for arg in (f"--{name}-listen", f"127.0.0.1:{port}")),
            *extra_args,
        ],
        workdir / "outpost-run.log",
        env=env or {},
    ).start()
    return process, ports, data_dir


def pid_running(pid: int) -> bool:
    """True while `pid` is a live process (a zombie nobody has reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def wait_ready(process: Process, ready_file: Path, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        if not process.alive():
            code = process.popen.returncode if process.popen else "?"
            raise AssertionError(f"{process.name} exited early with {code}:\n{process.log()[-4000:]}")
        return read_ready_file(ready_file)

    try:
        return wait_for(check, timeout, interval=0.05, what=f"{process.name} ready file")
    except AssertionError:
        print(process.log()[-4000:])
        raise


@dataclass
class Replica:
    """One gateway or scheduler process that can be killed and started again on its ports.

    `listen` maps what the ready file calls each listener ("grpc", "websocket", "tcp") to
    the address to bind; `command` builds the full command line from it. After a start,
    `ready` holds what the process wrote, and `restart()` binds the same addresses again.
    """

    name: str
    workdir: Path
    listen: dict[str, str]
    command: Callable[[dict[str, str]], list[str]]
    process: Process | None = None
    ready: dict[str, Any] = field(default_factory=dict)

    @property
    def ready_file(self) -> Path:
        return self.workdir / f"{self.name}.ready"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def launch(self) -> Replica:
        """Start the process without waiting for it (several replicas start at once)."""
        self.ready_file.unlink(missing_ok=True)
        self.process = Process(self.name, self.command(self.listen), self.log_path).start()
        return self

    def wait_ready(self, timeout: float = 30.0) -> Replica:
        assert self.process is not None
        self.ready = wait_ready(self.process, self.ready_file, timeout)
        return self

    def start(self) -> Replica:
        return self.launch().wait_ready()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> None:
        """SIGKILL by pid: no drain, no goodbye; the kernel closes its sockets."""
        assert self.process is not None
        self.process.stop(signal.SIGKILL, timeout=10)

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM by pid and wait (SIGKILL after `timeout`); the exit code."""
        assert self.process is not None
        return self.process.stop(signal.SIGTERM, timeout)

    def restart(self) -> Replica:
        """Start again on the addresses it was bound to (after `kill` or `terminate`)."""
        assert not self.alive(), f"{self.name} is still running"
        self.listen = {key: self.ready.get(key, address) for key, address in self.listen.items()}
        return self.start()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.process.log() if self.process else ""

    def log_events(self) -> list[dict[str, Any]]:
        return self.process.log_events() if self.process else []


@dataclass
class ControlPlane:
    """Registry, schedulers and gateways as real processes on free ports, on one database.

    `start()` starts one registry, `scheduler_count` schedulers and `gateway_count`
    gateways; gateway i watches scheduler i mod `scheduler_count`. `gateway`/`scheduler`
    (and their `_ready`) are the first replica, for tests that need only one. `ctl` talks to
    the first replica that is alive. `*_args` are added to every replica of that service;
    `add_gateway`/`add_scheduler` take extra arguments for one replica.
    """

    workdir: Path
    database_url: str
    heartbeat_interval: int = 2
    gateway_count: int = 1
    scheduler_count: int = 1
    registry: Process | None = None
    registry_ready: dict[str, Any] = field(default_factory=dict)
    gateways: list[Replica] = field(default_factory=list)
    schedulers: list[Replica] = field(default_factory=list)
    registry_args: list[str] = field(default_factory=list)
    gateway_args: list[str] = field(default_factory=list)
    scheduler_args: list[str] = field(default_factory=list)

    def database_args(self) -> list[str]:
        """On SQLite each service keeps its own file under the data dir (the default)."""
        return [] if self.database_url.startswith("sqlite") else ["--database-url", self.database_url]

    @property
    def identities(self) -> dict[str, Path]:
        """Each calling service's identity secret (what `outpost-run` makes in its data dir)."""
        return ensure_service_tokens(self.workdir / "secrets")

    @property
    def admin_token_file(self) -> Path:
        """The bootstrap admin token the registry wrote on its first start."""
        return self.workdir / "admin.token"

    @property
    def admin_token(self) -> str:
        return self.admin_token_file.read_text().strip()

    @property
    def access_key_file(self) -> Path:
        """The bootstrap access key the registry wrote on its first start (mode 0600)."""
        return self.workdir / "access.key"

    def start(self, tls: tuple[Path, Path] | None = None) -> ControlPlane:
        """Start every process; if one never becomes ready, stop the ones started (a fixture
        that fails in `start` never reaches its teardown, so they would outlive the test)."""
        try:
            return self._start(tls)
        except BaseException:
            self.stop()
            raise

    def _start(self, tls: tuple[Path, Path] | None) -> ControlPlane:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._start_registry("127.0.0.1:0")
        if tls:
            self.gateway_args = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1]), *self.gateway_args]
        for replica in [self._scheduler_replica() for _ in range(self.scheduler_count)]:
            replica.launch()
        for replica in self.schedulers:
            replica.wait_ready()
        for replica in [self._gateway_replica() for _ in range(self.gateway_count)]:
            replica.launch()
        for replica in self.gateways:
            replica.wait_ready()
        return self

    def restart_registry(self) -> None:
        """SIGTERM the registry (it must exit 0) and start it again on the port it had."""
        assert self.registry is not None
        assert self.registry.stop() == 0, self.registry.log()[-3000:]
        self._start_registry(self.registry_ready["grpc"])

    def _start_registry(self, listen: str) -> None:
        ready = self.workdir / "registry.ready"
        ready.unlink(missing_ok=True)
        identities = self.identities
        self.registry = Process(
            "registry",
            [
                str(BIN / "outpost-registry"),
                "--listen",
                listen,
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
                "--peer-token",
                f"gateway={identities['gateway']}",
                "--peer-token",
                f"scheduler={identities['scheduler']}",
                "--admin-token-file",
                str(self.admin_token_file),
                "--bootstrap-access-key-file",
                str(self.access_key_file),
                *self.registry_args,
            ],
            self.workdir / "registry.log",
        ).start()
        self.registry_ready = wait_ready(self.registry, ready)

    # --- the first replica, as tests of one gateway and one scheduler know it -----------

    @property
    def gateway(self) -> Process | None:
        return self.gateways[0].process if self.gateways else None

    @property
    def gateway_ready(self) -> dict[str, Any]:
        return self.gateways[0].ready if self.gateways else {}

    @property
    def scheduler(self) -> Process | None:
        return self.schedulers[0].process if self.schedulers else None

    @property
    def scheduler_ready(self) -> dict[str, Any]:
        return self.schedulers[0].ready if self.schedulers else {}

    def start_scheduler(self, listen: str = "127.0.0.1:0") -> None:
        """(Re)start the first scheduler on `listen`."""
        replica = self._scheduler_replica(listen, index=0)
        replica.start()

    def start_gateway(self, grpc: str, ws: str, tcp: str, admin: str = "127.0.0.1:0") -> None:
        """(Re)start the first gateway on these addresses."""
        replica = self._gateway_replica({"grpc": grpc, "websocket": ws, "tcp": tcp, "admin": admin}, index=0)
        replica.start()

    def restart_gateway(self) -> None:
        """SIGTERM the first gateway (it must exit 0) and start it again on the same ports."""
        gateway = self.gateways[0]
        assert gateway.terminate() == 0, gateway.log()[-3000:]
        gateway.restart()

    # --- more replicas ---------------------------------------------------------------

    def add_scheduler(self, args: Sequence[str] = ()) -> Replica:
        return self._scheduler_replica(args=args).start()

    def add_gateway(self, scheduler: int | None = None, args: Sequence[str] = ()) -> Replica:
        """Another gateway; it watches scheduler number `scheduler` (default: round robin)."""
        return self._gateway_replica(scheduler=scheduler, args=args).start()

    def live_gateway(self) -> Replica:
        return next((g for g in self.gateways if g.alive()), self.gateways[0])

    def live_scheduler(self) -> Replica:
        return next((s for s in self.schedulers if s.alive()), self.schedulers[0])

    def _scheduler_replica(
        self, listen: str = "127.0.0.1:0", index: int | None = None, args: Sequence[str] = ()
    ) -> Replica:
        position = len(self.schedulers) if index is None else index
        name = "scheduler" if position == 0 else f"scheduler-{position + 1}"
        replica = Replica(
            name,
            self.workdir,
            {"grpc": listen},
            lambda listen: [
                str(BIN / "outpost-scheduler"),
                "--listen",
                listen["grpc"],
                "--metrics-listen",
                "127.0.0.1:0",
                "--data-dir",
                str(self.workdir),
                *self.database_args(),
                "--registry",
                self.registry_ready["grpc"],
                "--ready-file",
                str(self.workdir / f"{name}.ready"),
                "--log-format",
                "json",
                "--token-file",
                str(self.identities["scheduler"]),
                "--peer-token",
                f"gateway={self.identities['gateway']}",
                *self.scheduler_args,
                *args,
            ],
        )
        self._place(self.schedulers, position, replica)
        return replica

    def _gateway_replica(
        self,
        listen: dict[str, str] | None = None,
        index: int | None = None,
        scheduler: int | None = None,
        args: Sequence[str] = (),
    ) -> Replica:
        position = len(self.gateways) if index is None else index
        name = "gateway" if position == 0 else f"gateway-{position + 1}"
        watched = (position if scheduler is None else scheduler) % len(self.schedulers)
        replica = Replica(
            name,
            self.workdir,
            listen or {"grpc": "127.0.0.1:0", "websocket": "127.0.0.1:0", "tcp": "127.0.0.1:0", "admin": "127.0.0.1:0"},
            lambda listen: [
                str(BIN / "outpost-gateway"),
                "--grpc-listen",
                listen["grpc"],
                "--admin-listen",
                listen.get("admin", "127.0.0.1:0"),
                "--token-file",
                str(self.identities["gateway"]),
                "--ws-listen",
                listen["websocket"],
                "--tcp-listen",
                listen["tcp"],
                "--metrics-listen",
                "127.0.0.1:0",
                "--registry",
                self.registry_ready["grpc"],
                "--scheduler",
                self.schedulers[watched].ready["grpc"],
                "--data-dir",
                str(self.workdir),
                *self.database_args(),
                "--handshake-timeout",
                "3",
                "--drain-seconds",
                "3",
                "--ready-file",
                str(self.workdir / f"{name}.ready"),
                "--log-format",
                "json",
                *self.gateway_args,
                *args,
            ],
        )
        self._place(self.gateways, position, replica)
        return replica

    @staticmethod
    def _place(replicas: list[Replica], position: int, replica: Replica) -> None:
        """Put `replica` at `position`; a replica it replaces is stopped first (it would leak)."""
        if position < len(replicas):
            if replicas[position].alive():
                replicas[position].terminate()
            replicas[position] = replica
        else:
            replicas.append(replica)

    # --- using it --------------------------------------------------------------------

    def url(self, transport: str, tls: bool = False, gateway: int = 0) -> str:
        """The `--server` URL of gateway number `gateway` for `transport`.

        A `Collector` given this URL gets this plane's access key (see `ACCESS_KEY_BY_URL`).
        """
        ready = self.gateways[gateway].ready
        if transport == "grpc":
            url = f"{'grpcs' if tls else 'grpc'}://{ready['grpc']}"
        elif transport == "http_poll":
            url = f"{'https' if tls else 'http'}://{ready['websocket']}/v1/poll"
        elif transport == "websocket":
            url = f"{'wss' if tls else 'ws'}://{ready['websocket']}/v1/agent"
        else:
            url = f"{'tls' if tls else 'tcp'}://{ready['tcp']}"
        ACCESS_KEY_BY_URL[url] = self.access_key_file
        return url

    def urls(self, transport: str, tls: bool = False) -> list[str]:
        """Every gateway's URL, in order: a collector's `--server` list for failover."""
        return [self.url(transport, tls, gateway=i) for i in range(len(self.gateways))]

    def ctl(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        gateway: Replica | None = None,
        scheduler: Replica | None = None,
        token: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run outpostctl against the registry and the given (default: first live) replicas.

        With the bootstrap admin token (as `make run` gives it) unless `token` says otherwise
        ("" for none); never the user's own config file.
        """
        gateway_ready = (gateway or self.live_gateway()).ready if self.gateways else {}
        scheduler_ready = (scheduler or self.live_scheduler()).ready if self.schedulers else {}
        result = subprocess.run(
            [
                str(BIN / "outpostctl"),
                "--registry",
                self.registry_ready["grpc"],
                "--gateway",
                gateway_ready.get("admin", "127.0.0.1:1"),
                "--scheduler",
                scheduler_ready.get("grpc", "127.0.0.1:1"),
                *args,
            ],
            input=stdin,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                "OUTPOST_TOKEN": self.admin_token if token is None else token,
                "OUTPOST_CONFIG": str(self.workdir / "outpostctl-config.json"),
            },
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"outpostctl {' '.join(args)} failed ({result.returncode}): {result.stderr}{result.stdout}"
            )
        return result

    def collectors(self) -> list[dict[str, Any]]:
        return json.loads(self.ctl("collectors", "list", "--json").stdout)

    def stop(self) -> None:
        """SIGTERM the gateways (all at once: each drains), then the schedulers, then the registry."""
        for group in (self.gateways, self.schedulers):
            running = [r.process for r in group if r.process is not None and r.process.alive()]
            for process in running:
                os.kill(process.pid, signal.SIGTERM)
            for process in running:
                process.stop()
        if self.registry is not None:
            self.registry.stop()


ACCESS_KEY_BY_URL: dict[str, Path] = {}
"""Gateway URL -> the access-key file of the plane that handed it out (`ControlPlane.url`).

Ports are unique per process, so a `Collector` finds its plane's access key from its
`--server` URLs without every test passing the plane along."""


@dataclass
class Collector:
    """The real `outpost-collector` process.

    Every collector needs an access key (sealed sessions, ADR 0019): `access_key_file`, or
    by default the access-key file of the plane whose URL is among `servers`
    (`ControlPlane.url`). A test that points a collector elsewhere (a proxy) passes the
    plane's `access_key_file`; one that tests a collector without a key passes
    `access_key_file=False`.
    """

    workdir: Path
    name: str
    servers: list[str]
    password: str
    username: str = "svc-outpost"
    zone: str = "lab"
    extra_args: list[str] = field(default_factory=list)
    process: Process | None = None
    access_key_file: Path | bool | None = None
    program: list[str] | None = None
    """Another way to start it (e.g. another venv's python -c ...); None: outpost-collector."""
    env: dict[str, str] = field(default_factory=dict)
    """Added to the collector's environment only (HTTPS_PROXY, ...), never to the test's."""

    def _access_key_args(self) -> list[str]:
        if self.access_key_file is False:
            return []
        path = self.access_key_file
        if not isinstance(path, Path):
            path = next((ACCESS_KEY_BY_URL[url] for url in self.servers if url in ACCESS_KEY_BY_URL), None)
        if path is None:
            raise AssertionError(
                f"collector {self.name}: no access key for {self.servers}; pass access_key_file=plane.access_key_file"
            )
        return ["--access-key-file", str(path)]

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
            *(self.program or [str(BIN / "outpost-collector")]),
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
            *self._access_key_args(),
            *self.extra_args,
        ]
        # Compiling all ~12,000 nmap fingerprints at start (a diagnostic log line) costs a second of
        # CPU per start, and the suite starts hundreds; tests/unit/collector/test_settings.py checks
        # it. An environment variable, not the flag: a collector of another version ignores it.
        env = {"OUTPOST_COLLECTOR_SKIP_SERVICE_PROBES_CHECK": "1", **self.env}
        self.process = Process(
            f"collector {self.name}", args, self.workdir / f"collector-{self.name}.log", env=env
        ).start()
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
            return wait_for(check, timeout, what=f"collector {self.name} state {state}")
        except AssertionError:
            assert self.process is not None
            print(self.process.log()[-3000:])
            raise

    def wait_status(
        self, condition: Callable[[dict[str, Any]], bool], what: str, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Wait until the status file satisfies `condition` (e.g. connected to another server)."""

        def check() -> dict[str, Any] | None:
            assert self.process is not None
            if not self.process.alive():
                raise AssertionError(f"collector exited: {self.process.log()[-3000:]}")
            status = self.status()
            return status if status and condition(status) else None

        try:
            return wait_for(check, timeout, what=f"collector {self.name}: {what}")
        except AssertionError:
            assert self.process is not None
            print(self.process.log()[-3000:])
            raise

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> None:
        """SIGKILL by pid: whatever it was writing stays as the crash left it."""
        assert self.process is not None
        self.process.stop(signal.SIGKILL, timeout=10)

    def restart(self) -> Collector:
        """Start again with the same data dir (key pair, binding, spool)."""
        assert not self.alive(), f"collector {self.name} is still running"
        return self.start()

    def log_events(self) -> list[dict[str, Any]]:
        return self.process.log_events() if self.process else []

    def stop(self) -> int | None:
        return self.process.stop() if self.process else None
