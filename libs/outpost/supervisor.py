"""`outpost-run`: the whole control plane on one machine, started and stopped together.

What `make run` executes. It starts the services as child processes, in dependency
order: the registry first, because the scheduler and the gateway dial it at start; then
the scheduler and the gateway side by side, each told the registry's real address. Each
child writes a ready file once it is serving (`outpost.ready`); the supervisor waits for
it (bounded, and failing at once if the child exits instead), then prints where
everything listens and how to point a collector and outpostctl at it.

From then on it only watches. Ctrl-C, SIGTERM or SIGHUP stops every child: SIGTERM (each
service drains gracefully), up to `--stop-grace` seconds (10) to exit, then SIGKILL; dependents
go before the registry so their last calls to it can still succeed. If a child exits on
its own, the supervisor stops the others and exits 1 naming it, rather than leaving half
a control plane running.

Children run in their own session, so a Ctrl-C (or a signal to the whole process group)
reaches only the supervisor, which then stops them once each and in order. They still
die with it: on Linux each child asks the kernel (`PR_SET_PDEATHSIG`) for SIGTERM when
the supervisor ends, however it ends, so a SIGKILLed supervisor does not leave services
holding their ports for the next `make run`; they drain as on any SIGTERM. The signal
is tied to the thread that forked the child, which is the event loop's (main) thread
here. Elsewhere (macOS) a SIGKILLed supervisor still leaves the services running; their
pids are in the ready files, and the next start warns about them.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from outpost import client_config
from outpost.auth import bearer
from outpost.auth.service_tokens import ensure_service_tokens
from outpost.config import HelpFormatter, add_version_flag
from outpost.logs import configure_logging
from outpost.ready import read_ready_file

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 10.0
READY_POLL_SECONDS = 0.05
DEFAULT_READY_TIMEOUT_SECONDS = 120.0
PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when the thread that forked it ends."""


class StartupError(Exception):
    """The control plane could not be brought up; the message says which service and why."""


class ServiceDiedError(Exception):
    """A service exited while the control plane was running."""


class Interrupted(Exception):
    """A stop signal arrived while the services were still starting."""


@dataclass
class Child:
    """One service process: how to start it and, once started, its process and ready data."""

    service: str
    argv: list[str]
    ready_file: Path
    tier: int
    """Start order: a tier starts once every lower tier is ready, and stops before them."""
    process: asyncio.subprocess.Process | None = None
    ready: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def returncode(self) -> int:
        """The exit status; only meaningful once the process has exited."""
        assert self.process is not None and self.process.returncode is not None
        return self.process.returncode


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="outpost-run",
        formatter_class=HelpFormatter,
        description="Run the Outpost control plane (registry, scheduler, gateway) on this machine.",
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".outpost"), help="where each service keeps its files")
    parser.add_argument(
        "--database-url",
        help="postgresql+asyncpg://... shared by every service (each keeps its own schema); "
        "default: one SQLite file per service under the data directory",
    )
    parser.add_argument("--log-format", choices=["json", "console"], default="console")
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT_SECONDS,
        help="seconds each service may take to be serving, migrations included",
    )
    parser.add_argument(
        "--stop-grace",
        type=float,
        default=STOP_GRACE_SECONDS,
        help="seconds each service gets to exit after SIGTERM before SIGKILL",
    )
    add_version_flag(parser)
    listen = parser.add_argument_group("listen addresses (default: each service's own)")
    listen.add_argument("--registry-listen", metavar="HOST:PORT")
    listen.add_argument("--registry-metrics-listen", metavar="HOST:PORT")
    listen.add_argument("--scheduler-listen", metavar="HOST:PORT")
    listen.add_argument("--scheduler-metrics-listen", metavar="HOST:PORT")
    listen.add_argument("--gateway-grpc-listen", metavar="HOST:PORT")
    listen.add_argument("--gateway-admin-listen", metavar="HOST:PORT")
    listen.add_argument("--gateway-ws-listen", metavar="HOST:PORT")
    listen.add_argument("--gateway-tcp-listen", metavar="HOST:PORT")
    listen.add_argument("--gateway-metrics-listen", metavar="HOST:PORT")
    return parser.parse_args(argv)


def build_children(opts: argparse.Namespace, bin_dir: Path) -> list[Child]:
    """The three services with their flags; the dependents' `--registry` is added at start.

    Each calling service gets its identity secret from `<data-dir>/secrets/` (created on
    first start), and each called service is told whose secrets to accept.
    """
    run_dir = opts.data_dir / "run"
    identities = ensure_service_tokens(opts.data_dir / "secrets")
    common = ["--log-format", opts.log_format, "--log-level", opts.log_level]
    data_dir = ["--data-dir", str(opts.data_dir)]
    # Every service owns tables (its own schema on PostgreSQL, its own file on SQLite).
    storage = [*data_dir, *(["--database-url", opts.database_url] if opts.database_url else [])]

    def flags(pairs: dict[str, str | None]) -> list[str]:
        # An empty value is passed on: it disables that gateway listener.
        return [arg for flag, value in pairs.items() if value is not None for arg in (flag, value)]

    def child(service: str, tier: int, args: list[str]) -> Child:
        ready = run_dir / f"{service}.ready"
        argv = [str(bin_dir / f"outpost-{service}"), *args, *common, "--ready-file", str(ready)]
        return Child(service, argv, ready, tier)

    return [
        child(
            "registry",
            0,
            [
                *storage,
                *flags({"--listen": opts.registry_listen, "--metrics-listen": opts.registry_metrics_listen}),
                *("--peer-token", f"gateway={identities['gateway']}"),
                *("--peer-token", f"scheduler={identities['scheduler']}"),
                *("--admin-token-file", str(admin_token_file(opts))),
                *("--bootstrap-access-key-file", str(access_key_file(opts))),
            ],
        ),
        child(
            "scheduler",
            1,
            [
                *storage,
                *flags({"--listen": opts.scheduler_listen, "--metrics-listen": opts.scheduler_metrics_listen}),
                *("--token-file", str(identities["scheduler"])),
                *("--peer-token", f"gateway={identities['gateway']}"),
            ],
        ),
        child(
            "gateway",
            2,
            [
                *storage,
                *flags(
                    {
                        "--grpc-listen": opts.gateway_grpc_listen,
                        "--admin-listen": opts.gateway_admin_listen,
                        "--ws-listen": opts.gateway_ws_listen,
                        "--tcp-listen": opts.gateway_tcp_listen,
                        "--metrics-listen": opts.gateway_metrics_listen,
                    }
                ),
                *("--token-file", str(identities["gateway"])),
            ],
        ),
    ]


def prepare(children: list[Child]) -> None:
    """Check every executable is installed and clear ready files left by a previous run."""
    for child in children:
        executable = Path(child.argv[0])
        if not executable.exists():
            raise StartupError(f"{executable} not found: install the project first (make venv)")
        child.ready_file.parent.mkdir(parents=True, exist_ok=True)
        _warn_if_still_running(child)
        child.ready_file.unlink(missing_ok=True)


def forget_ready_files(children: list[Child]) -> None:
    """Remove the ready files of stopped children: they describe processes that are gone."""
    for child in children:
        if not child.running:
            child.ready_file.unlink(missing_ok=True)


def _warn_if_still_running(child: Child) -> None:
    """A ready file whose process is alive: left by a supervisor killed hard (off Linux), or still draining."""
    pid = (read_ready_file(child.ready_file) or {}).get("pid")
    if not isinstance(pid, int):
        return
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return
    log.warning(
        "previous_service_running",
        child=child.service,
        pid=pid,
        advice=f"a previous run may have left it running; stop it with `kill {pid}` if ports clash",
    )


async def start(child: Child, extra: Sequence[str] = ()) -> None:
    """Spawn the child; its output goes straight to our stdout/stderr."""
    child.argv += extra
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child.process = await asyncio.create_subprocess_exec(
        *child.argv, env=env, start_new_session=True, preexec_fn=_die_with_parent()
    )
    log.info("service_started", child=child.service, pid=child.process.pid)


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook making the child get SIGTERM when this process ends; None off Linux.

    libc is loaded here, before the fork: the hook runs between fork and exec, where only
    a few calls are safe. If this process died before the child set the signal, the child
    has already been reparented and exits at once instead of running unsupervised.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def die_with_parent() -> None:
        if prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
        if os.getppid() != parent:
            os._exit(1)

    return die_with_parent


async def wait_ready(child: Child, stop: asyncio.Event, timeout: float) -> None:
    """Wait for the child's ready file; fail fast if it exits, give up after `timeout`."""
    assert child.process is not None
    deadline = time.monotonic() + timeout
    while True:
        ready = read_ready_file(child.ready_file)
        if ready is not None:
            child.ready = ready
            log.info("service_ready", child=child.service, **_addresses(ready))
            return
        if child.process.returncode is not None:
            raise StartupError(
                f"{child.service} exited with {_describe_exit(child.process.returncode)} "
                "before it was ready; its log is above"
            )
        if stop.is_set():
            raise Interrupted
        if time.monotonic() > deadline:
            raise StartupError(f"{child.service} was not ready within {timeout:g} s")
        await asyncio.sleep(READY_POLL_SECONDS)


async def supervise(children: list[Child], stop: asyncio.Event) -> None:
    """Return on a stop signal; raise `ServiceDiedError` if a child exits on its own."""
    exits = [asyncio.ensure_future(c.process.wait()) for c in children if c.process is not None]
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([stopped, *exits], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in [stopped, *exits]:
            task.cancel()
    if stop.is_set():
        return
    died = [c for c in children if c.process is not None and c.process.returncode is not None]
    raise ServiceDiedError(
        "; ".join(f"{c.service} exited on its own with {_describe_exit(c.returncode)}" for c in died)
        + "; stopped the others"
    )


async def stop_all(children: list[Child], grace: float) -> None:
    """SIGTERM each tier, newest first; SIGKILL what is still running after `grace` seconds."""
    for tier in sorted({c.tier for c in children}, reverse=True):
        group = [c for c in children if c.tier == tier and c.running]
        await asyncio.gather(*(_stop(c, grace) for c in group))


async def _stop(child: Child, grace: float) -> None:
    assert child.process is not None
    try:
        child.process.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        await asyncio.wait_for(child.process.wait(), grace)
    except TimeoutError:
        log.warning("service_killed", child=child.service, grace_seconds=grace)
        child.process.kill()
        await child.process.wait()
    log.info("service_stopped", child=child.service, exit_code=child.process.returncode)


async def run(opts: argparse.Namespace) -> int:
    """Start, watch, stop; the exit status says whether the control plane ended cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    children = build_children(opts, Path(sys.executable).parent)
    failure = None
    try:
        prepare(children)
        if opts.database_url:
            await create_database_if_missing(opts.database_url, opts.ready_timeout)
        for tier in sorted({c.tier for c in children}):
            group = [c for c in children if c.tier == tier]
            extra = [] if tier == 0 else ["--registry", dialable(_ready(children, "registry")["grpc"])]
            if tier >= 2:
                extra += ["--scheduler", dialable(_ready(children, "scheduler")["grpc"])]
            for child in group:
                await start(child, extra)
            for child in group:  # they start side by side; waiting in turn costs nothing
                await wait_ready(child, stop, opts.ready_timeout)
        ready = {c.service: c.ready for c in children}
        context_file = save_cli_context(opts, ready)
        print(banner(opts, ready, context_file), flush=True)
        await supervise(children, stop)
    except (StartupError, ServiceDiedError) as exc:
        failure = str(exc)
    except Interrupted:
        pass
    finally:
        await stop_all(children, opts.stop_grace)
        forget_ready_files(children)
    if failure is None:
        return 0
    # Last, after the children's shutdown logs, so it is the line a person sees.
    log.error("control_plane_failed", error=failure)
    print(f"outpost-run: {failure}", file=sys.stderr)
    return 1


async def create_database_if_missing(url: str, timeout: float) -> None:
    """Create the PostgreSQL database the services share, once, before any of them starts.

    Three services racing to create it would fail each other; here it happens once. When
    the user may not create it, stop with the command that does.
    """
    from outpost.db_create import DatabaseNotCreatedError, ensure_database  # imports SQLAlchemy

    try:
        created = await asyncio.wait_for(ensure_database(url), timeout)
    except DatabaseNotCreatedError as exc:
        raise StartupError(str(exc)) from exc
    except TimeoutError:
        log.warning("database_check_timed_out", database=_redact(url), timeout_seconds=timeout)
        return  # the services say what is wrong with the server as they start
    if created:
        log.info("database_created", database=_redact(url))


def admin_token_file(opts: argparse.Namespace) -> Path:
    return Path(opts.data_dir) / "admin.token"


def access_key_file(opts: argparse.Namespace) -> Path:
    """The bootstrap access key the registry writes on the first start (mode 0600)."""
    return Path(opts.data_dir) / "access.key"


def save_cli_context(opts: argparse.Namespace, ready: dict[str, dict[str, Any]]) -> Path | None:
    """Point outpostctl's `local` context at this control plane with its admin token.

    None when the data directory has no admin token file (its database had tokens before
    the file was made, or the file was deleted): the banner then says what to do.
    """
    try:
        token = bearer.read_secret_file(admin_token_file(opts))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("admin_token_unreadable", path=str(admin_token_file(opts)), error=str(exc))
        return None
    context = client_config.Context(
        registry=dialable(ready["registry"]["grpc"]),
        scheduler=dialable(ready["scheduler"]["grpc"]),
        gateway=dialable(ready["gateway"]["admin"]),
        token=token,
    )
    try:
        return client_config.save_context(client_config.LOCAL_CONTEXT, context)
    except (OSError, ValueError) as exc:
        log.warning("cli_context_not_saved", path=str(client_config.config_path()), error=str(exc))
        return None


def banner(opts: argparse.Namespace, ready: dict[str, dict[str, Any]], context_file: Path | None = None) -> str:
    """Where everything listens and how to use it, from what the services wrote."""
    registry, scheduler, gateway = ready["registry"], ready["scheduler"], ready["gateway"]
    database = _redact(opts.database_url) if opts.database_url else f"SQLite files under {opts.data_dir}/"
    servers = [f"grpc://{dialable(gateway['grpc'])}"]
    lines = [
        "",
        f"Outpost control plane is running (database: {database})",
        "",
        f"  registry   gRPC {registry['grpc']:<22} metrics {_metrics(registry)}",
        f"  scheduler  gRPC {scheduler['grpc']:<22} metrics {_metrics(scheduler)}",
        f"  gateway    gRPC {gateway['grpc']:<22} metrics {_metrics(gateway)}",
        f"             admin gRPC {gateway['admin']} (sessions, inventory; internal)",
    ]
    if gateway.get("websocket"):
        servers.append(_url("ws", gateway["websocket"], "/v1/agent"))
        lines.append(f"             WebSocket {servers[-1]}")
    if gateway.get("tcp"):
        servers.append(_url("tcp", gateway["tcp"]))
        lines.append(f"             TCP {gateway['tcp']}")
    key_file = access_key_file(opts)
    collector = (
        f"--access-key-file {key_file} --name edge-1 --zone lab --username svc --password-file pw --data-dir ./edge-1"
    )
    if key_file.exists():
        key_note = [f"The access key in {key_file} admits collectors (outpostctl access-keys create makes more)."]
    else:
        key_note = [
            f"No access key file at {key_file}: this database already had access keys.",
            "Create one for the collector: outpostctl access-keys create NAME > FILE (then chmod 600 FILE).",
        ]
    ctl = "outpostctl"
    if context_file is not None:
        credential = [
            f"outpostctl uses the context '{client_config.LOCAL_CONTEXT}' in {context_file}",
            f"(these addresses and the admin token in {admin_token_file(opts)}; see README 'Admin access').",
        ]
    else:
        credential = [
            f"No admin token file at {admin_token_file(opts)}: this database already had tokens.",
            "Pass one of yours: outpostctl --token-file FILE ... (or OUTPOST_TOKEN).",
        ]
    lines += [
        "",
        *credential,
        "",
        *key_note,
        "Connect a collector (any one transport; the file `pw` holds its service password):",
        *(f"  outpost-collector --server {server} {collector}" for server in servers),
        "",
        "Then register it:",
        f"  {ctl} collectors list",
        f"  {ctl} collectors register edge-1 --username svc --password-file pw --enable",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def dialable(address: str) -> str:
    """A listen address as a client dials it: a wildcard host becomes loopback."""
    host, _, port = address.rpartition(":")
    if host in ("0.0.0.0", "[::]", "::", ""):
        host = "127.0.0.1"
    return f"{host}:{port}"


def _url(scheme: str, address: str, path: str = "") -> str:
    return address if "://" in address else f"{scheme}://{dialable(address)}{path}"


def _metrics(ready: dict[str, Any]) -> str:
    address = ready.get("metrics")
    return _url("http", address, "/metrics") if address else "off"


def _addresses(ready: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ready.items() if k in ("grpc", "admin", "metrics", "websocket", "tcp")}


def _ready(children: list[Child], service: str) -> dict[str, Any]:
    return next(c.ready for c in children if c.service == service)


def _redact(url: str) -> str:
    from outpost.db import redact  # imports SQLAlchemy; only needed for this line

    return redact(url)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def main(argv: Sequence[str] | None = None) -> None:
    opts = parse_args(argv)
    configure_logging(opts.log_format, opts.log_level, service="run")
    raise SystemExit(asyncio.run(run(opts)))
