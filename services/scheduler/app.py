"""`outpost-scheduler`: configuration -> objects -> servers. No logic lives here.

Start-up: parse flags (each also read from `OUTPOST_SCHEDULER_<KEY>`), configure logs,
migrate the database, bind gRPC (and `/metrics`), start the tick loop, mark health
SERVING, write the ready file. SIGTERM/SIGINT: health NOT_SERVING, the tick loop stops,
watches end (gateways re-open them elsewhere), in-flight calls get `--shutdown-grace`
seconds, the engine is disposed, exit 0. Bad configuration exits non-zero with one line.

Admin calls carry bearer tokens, which the scheduler checks with the registry at
`--registry` (presenting its own identity, `--token-file`); with the same identity it
lists collectors there, to refuse discoveries for unknown ones and to say why queued
runs wait. Gateways call it with theirs
(`--peer-token gateway=FILE`). Changes are audited in its own `audit_events` table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import grpc
from grpc_health.v1 import health
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from outpost import config as cfg
from outpost.auth import audit, bearer, service_tokens
from outpost.auth.interceptor import Authenticator, AuthInterceptor
from outpost.auth.registry_tokens import RegistryTokens
from outpost.auth.service_tokens import peer_channel
from outpost.db import default_sqlite_url, redact_unparsable
from outpost.db_create import open_failure
from outpost.logs import LogFormat, configure_logging
from outpost.migrate_command import is_migrate_command, migrate_main
from outpost.numbers import parse_ascii_int
from outpost.pg_listen import ChannelListener, channel_name
from outpost.process import exit_now
from outpost.runtime import (
    TlsFiles,
    bind,
    build_grpc_server,
    serve_until_signalled,
    set_serving,
)
from outpost.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.scheduler.api.servicer import SchedulerServicer
from services.scheduler.catalog import Catalog
from services.scheduler.clock import Clock, utc_now
from services.scheduler.dispatcher import Dispatcher
from services.scheduler.domain.leases import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    MAX_ATTEMPTS_LIMIT,
    MAX_LEASE_SECONDS,
    LeasePolicy,
)
from services.scheduler.registry_client import RegistryCollectors
from services.scheduler.store.database import SCHEMA, open_store
from services.scheduler.store.models import AUDIT_EVENTS
from services.scheduler.store.queries import SchedulerStore
from services.scheduler.ticker import Ticker
from services.scheduler.waiting_reasons import WaitingReasons
from services.scheduler.watch import WatchHub

SERVICE = "scheduler"
SERVICE_NAME = scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name
MAX_TICK_SECONDS = 30.0


@dataclass(frozen=True)
class SchedulerConfig:
    database_url: str
    listen: str = "127.0.0.1:50071"
    metrics_listen: str = "127.0.0.1:9103"
    registry: str = "127.0.0.1:50051"
    tick_interval: float = 1.0
    """Seconds between ticks; 0 runs no tick loop (tests call `ticker.tick()` themselves)."""
    tls: TlsFiles | None = None
    ready_file: str | None = None
    log_format: LogFormat = "json"
    log_level: str = "info"
    shutdown_grace: float = 5.0
    watch_poll_interval: float = 0.25
    watch_listen: bool = True
    """On PostgreSQL, wake watches by LISTEN/NOTIFY (`--watch-wakeup listen`)."""
    watch_bookmark_interval: float = 10.0
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    """How long a claim or a renewal keeps a run with its collector (ADR 0010)."""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """Attempts whose lease may expire before the run is failed."""
    registry_ca_file: str | None = None
    token_file: Path | None = None
    """This scheduler's service identity, presented to the registry to check admin tokens;
    None: admin tokens cannot be checked, so only service identities get in."""
    peer_tokens: dict[str, Path] = field(default_factory=dict)


class StartupError(Exception):
    """The service cannot start; the message is the one line the operator sees."""


@dataclass
class SchedulerServer:
    """The built service: start it, stop it. Tests use it exactly like `main` does."""

    grpc_server: grpc.aio.Server
    health: health.aio.HealthServicer
    store: SchedulerStore
    hub: WatchHub
    catalog: Catalog
    dispatcher: Dispatcher
    ticker: Ticker
    tick_interval: float
    registry_channel: grpc.aio.Channel | None = None
    waiting: WaitingReasons | None = None
    """Why queued runs wait (needs the registry); refreshed beside the tick loop."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.hub.start()
        await self.grpc_server.start()
        if self.tick_interval > 0:
            self._tasks.append(asyncio.create_task(self.ticker.run(self.tick_interval), name="scheduler-tick"))
            if self.waiting is not None:
                self._tasks.append(asyncio.create_task(self.waiting.run(), name="scheduler-waiting-reasons"))
        await set_serving(self.health, [SERVICE_NAME], serving=True)

    async def stop(self, grace: float | None) -> None:
        await set_serving(self.health, [SERVICE_NAME], serving=False)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.hub.close()
        await self.grpc_server.stop(grace)
        if self.registry_channel is not None:
            await self.registry_channel.close()
        await self.store.dispose()


async def build_server(config: SchedulerConfig, *, clock: Clock = utc_now) -> tuple[SchedulerServer, int]:
    """Migrate, wire and bind (port 0 picks a free one); returns the server and its port."""
    try:
        store = await open_store(config.database_url)
    except Exception as exc:  # driver errors have no common base; name it and stop
        raise StartupError(open_failure(config.database_url, exc)) from exc
    listener = (
        ChannelListener.for_database(
            config.database_url,
            channel_name(SCHEMA, "dispatch_events"),
            application_name=f"outpost-{SERVICE}-listen",
        )
        if config.watch_listen
        else None
    )
    hub = WatchHub(
        store,
        poll_interval=config.watch_poll_interval,
        bookmark_interval=config.watch_bookmark_interval,
        listener=listener,
    )
    leases = LeasePolicy(seconds=config.lease_seconds, max_attempts=config.max_attempts)
    try:
        peers = service_tokens.load_peer_digests(config.peer_tokens)
        own_secret = bearer.read_secret_file(config.token_file) if config.token_file else None
    except (OSError, ValueError) as exc:
        await store.dispose()
        raise StartupError(f"cannot read a token file: {exc}") from exc
    registry_channel = None
    admin_tokens = None
    collectors = None
    waiting = None
    if own_secret is not None:
        registry_channel = peer_channel(config.registry, config.registry_ca_file, own_secret)
        admin_tokens = RegistryTokens(registry_channel)
        collectors = RegistryCollectors(registry_channel)
        waiting = WaitingReasons(store, collectors, clock)
    catalog = Catalog(store, hub, clock, collectors)
    dispatcher = Dispatcher(store, hub, clock, leases)
    ticker = Ticker(store, hub, clock, leases)
    trail = audit.SqlAuditTrail(store.engine, AUDIT_EVENTS)
    auth = AuthInterceptor(Authenticator(peers, admin_tokens), service=SERVICE, trail=trail)
    server, health_servicer = build_grpc_server(service_names=[SERVICE_NAME, audit.SERVICE_NAME], auth=auth)
    scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(SchedulerServicer(catalog, dispatcher, hub), server)
    audit.add_audit_service(server, trail)
    try:
        port = bind(server, config.listen, config.tls, "scheduler gRPC")
    except BaseException:
        await store.dispose()
        raise
    built = SchedulerServer(
        server,
        health_servicer,
        store,
        hub,
        catalog,
        dispatcher,
        ticker,
        config.tick_interval,
        registry_channel,
        waiting,
    )
    return built, port


async def serve(config: SchedulerConfig) -> None:
    """Run until SIGTERM/SIGINT, then drain and return."""
    await serve_until_signalled(
        SERVICE,
        config,
        lambda: build_server(config),
        startup_error=StartupError,
        log_fields={
            "tick_interval": config.tick_interval,
            "lease_seconds": config.lease_seconds,
            "max_attempts": config.max_attempts,
        },
    )


class _OneLineParser(argparse.ArgumentParser):
    """Bad configuration ends the process with one clear line, not a usage screen."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _tick_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= MAX_TICK_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be > 0 and <= {MAX_TICK_SECONDS:g} (due runs are created within one tick), got {text}"
        )
    return value


def _bounded_int(low: int, high: int, why: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = parse_ascii_int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be >= {low} and <= {high} ({why}), got {text}")
        return value

    return parse


def _env(key: str, default: str | None = None) -> str | None:
    value: str | None = cfg.env_default(SERVICE, key, default)
    return value


def build_parser() -> argparse.ArgumentParser:
    env = _env
    parser = _OneLineParser(
        prog="outpost-scheduler",
        formatter_class=cfg.HelpFormatter,
        description="The Outpost scheduler: discoveries, schedules, job runs and dispatch. "
        "Every flag can also be set as OUTPOST_SCHEDULER_<FLAG> (e.g. OUTPOST_SCHEDULER_LISTEN). "
        "`outpost-scheduler migrate --help`: migrate the database and exit.",
    )
    parser.add_argument("--listen", type=cfg.host_port, default=env("listen", "127.0.0.1:50071"))
    parser.add_argument(
        "--metrics-listen",
        type=cfg.optional_host_port,
        default=env("metrics_listen", "127.0.0.1:9103"),
        help="host:port of /metrics (port 0: any free one; empty: off)",
    )
    parser.add_argument("--data-dir", type=Path, default=env("data_dir", ".outpost"))
    cfg.add_secret_flags(
        parser,
        SERVICE,
        "database_url",
        help="sqlite+aiosqlite:///FILE or postgresql+asyncpg://... (default: SQLite in --data-dir)",
    )
    parser.add_argument(
        "--registry",
        type=cfg.host_port,
        default=env("registry", "127.0.0.1:50051"),
        help="host:port of the registry, which checks the admin tokens presented here",
    )
    parser.add_argument("--registry-ca-file", default=env("registry_ca_file"), help="CA for a TLS registry")
    parser.add_argument(
        "--tick-interval",
        type=_tick_interval,
        default=env("tick_interval", "1"),
        help="seconds between ticks that create due runs, time out overdue ones and take back expired leases",
    )
    parser.add_argument(
        "--lease-seconds",
        type=_bounded_int(1, MAX_LEASE_SECONDS, "a day at most"),
        default=env("lease_seconds", str(DEFAULT_LEASE_SECONDS)),
        help="how long a claim, a job update or a RenewLeases hold keeps a run with its collector; "
        "keep it at 3 registry heartbeat intervals or more",
    )
    parser.add_argument(
        "--max-attempts",
        type=_bounded_int(1, MAX_ATTEMPTS_LIMIT, "1 runs each run once"),
        default=env("max_attempts", str(DEFAULT_MAX_ATTEMPTS)),
        help="attempts whose lease may expire before a run is failed",
    )
    parser.add_argument("--tls-cert", default=env("tls_cert"))
    parser.add_argument("--tls-key", default=env("tls_key"))
    parser.add_argument("--ready-file", default=env("ready_file"))
    parser.add_argument(
        "--shutdown-grace",
        type=cfg.positive(float),
        default=env("shutdown_grace", "5"),
        help="seconds in-flight calls get on SIGTERM",
    )
    service_tokens.add_identity_flags(parser, SERVICE, calls_peers=True, called_by=True)
    cfg.add_watch_flags(parser, SERVICE)
    cfg.add_common_flags(parser, SERVICE)
    return parser


def parse_config(argv: Sequence[str] | None = None) -> SchedulerConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together: give both or neither")
    tls = None
    if args.tls_cert:
        for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
            if not Path(path).is_file():
                parser.error(f"{flag} {path}: no such file")
        tls = TlsFiles(cert_file=args.tls_cert, key_file=args.tls_key)
    try:
        peer_tokens = service_tokens.parse_peer_tokens(args.peer_token)
    except ValueError as exc:
        parser.error(f"--peer-token: {exc}")
    url = cfg.secret_value(parser, args, "database_url") or default_sqlite_url(args.data_dir, SERVICE)
    try:
        make_url(url)
    except ArgumentError:
        parser.error(f"--database-url is not a database URL: {redact_unparsable(url)}")
    return SchedulerConfig(
        database_url=url,
        listen=args.listen,
        metrics_listen=args.metrics_listen,
        registry=args.registry,
        tick_interval=args.tick_interval,
        tls=tls,
        ready_file=args.ready_file,
        log_format=args.log_format,
        log_level=args.log_level,
        shutdown_grace=args.shutdown_grace,
        lease_seconds=args.lease_seconds,
        max_attempts=args.max_attempts,
        registry_ca_file=args.registry_ca_file,
        token_file=args.token_file,
        peer_tokens=peer_tokens,
        watch_listen=args.watch_wakeup == "listen",
    )


async def migrate_database(url: str) -> None:
    """`outpost-scheduler migrate`: the tables start-up would migrate, then close."""
    store = await open_store(url)
    await store.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    if is_migrate_command(argv):
        migrate_main(SERVICE, argv, migrate_database)
    config = parse_config(argv)
    configure_logging(config.log_format, config.log_level, service=SERVICE)
    try:
        asyncio.run(serve(config))
    except StartupError as exc:
        print(f"outpost-scheduler: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    exit_now(0)  # everything is closed: no interpreter teardown to wait for


if __name__ == "__main__":
    main()
