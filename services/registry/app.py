"""`outpost-registry`: configuration -> objects -> servers. No logic lives here.

Start-up: parse flags (each also read from `OUTPOST_REGISTRY_<KEY>`), configure logs,
load (or create) the secret key that encrypts credentials at rest, migrate the database
and load the server instance, load (first start: create) the server's Noise static key
and the bootstrap access key, bind gRPC (and `/metrics`), mark health SERVING, write the
ready file. SIGTERM/SIGINT: health NOT_SERVING, watches end (gateways re-open them
elsewhere), in-flight calls get `--shutdown-grace` seconds, the engine is disposed,
exit 0. Bad configuration (a malformed or exposed secret key file too) exits non-zero
with one line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import grpc
import structlog
from grpc_health.v1 import health
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from outpost import config as cfg
from outpost import errors
from outpost.auth import audit, service_tokens
from outpost.auth.interceptor import Authenticator, AuthInterceptor
from outpost.db import default_sqlite_url, is_sqlite, redact, redact_unparsable
from outpost.db_create import open_failure
from outpost.logs import LogFormat, configure_logging
from outpost.migrate_command import is_migrate_command, migrate_main
from outpost.pg_listen import ChannelListener, channel_name
from outpost.process import exit_now
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpost.runtime import (
    TlsFiles,
    bind,
    build_grpc_server,
    serve_until_signalled,
    set_serving,
)
from outpost.version import VERSION
from services.registry import metrics
from services.registry.access_keys import AccessKeyEvents, AccessKeys
from services.registry.api.servicer import RegistryServicer
from services.registry.credentials import Credentials
from services.registry.domain.pending_limits import PendingLimits
from services.registry.enrollment_tokens import EnrollmentTokens
from services.registry.pending_gate import PendingGate
from services.registry.registry import Registry, ServerInfo, utc_now
from services.registry.server_keys import ServerKeys
from services.registry.store.database import SCHEMA, open_store
from services.registry.store.models import AUDIT_EVENTS
from services.registry.store.queries import RegistryStore
from services.registry.store.secrets import (
    SECRET_KEY_BYTES,
    SecretBox,
    SecretKeyError,
    load_or_create_secret_key,
)
from services.registry.tokens import Tokens
from services.registry.watch import AccessKeyFeed, WatchHub

SERVICE = "registry"
SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name
MAX_HEARTBEAT_SECONDS = 86_400
GAUGE_REFRESH_SECONDS = 5.0
DEFAULT_KEY_FILE_NAME = "registry-secret.key"
DEFAULT_ADMIN_TOKEN_FILE_NAME = "admin.token"  # noqa: S105 (a file name, not a secret)
DEFAULT_ACCESS_KEY_FILE_NAME = "access.key"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RegistryConfig:
    database_url: str
    listen: str = "127.0.0.1:50051"
    metrics_listen: str = "127.0.0.1:9101"
    heartbeat_interval: int = 30
    tls: TlsFiles | None = None
    ready_file: str | None = None
    log_format: LogFormat = "json"
    log_level: str = "info"
    shutdown_grace: float = 5.0
    watch_poll_interval: float = 0.25
    watch_listen: bool = True
    """On PostgreSQL, wake watches by LISTEN/NOTIFY (`--watch-wakeup listen`)."""
    watch_bookmark_interval: float = 10.0
    pending_limits: PendingLimits = field(default_factory=PendingLimits)
    """How many collectors may wait as pending, in all and per source network."""
    secret_key_file: Path | None = None
    require_secret_key: bool = False
    """Refuse to start (rather than create a key) when `secret_key_file` does not exist."""
    """Key file encrypting credentials at rest. None (in-process tests only: `parse_config`
    always sets one) means a random key held in memory, so credentials die with the process."""
    admin_token_file: Path | None = None
    """Where the first start writes (or reads) the bootstrap admin token; None: no bootstrap."""
    bootstrap_access_key_file: Path | None = None
    """Where the first start writes (or reads) the bootstrap access key; None: no bootstrap."""
    peer_tokens: dict[str, Path] = field(default_factory=dict)
    """Service identities allowed to call: name -> file with its secret or `sha256:<hex>`."""


class StartupError(Exception):
    """The service cannot start; the message is the one line the operator sees."""


@dataclass
class RegistryServer:
    """The built service: start it, stop it. Tests use it exactly like `main` does."""

    grpc_server: grpc.aio.Server
    health: health.aio.HealthServicer
    registry: Registry
    hub: WatchHub
    store: RegistryStore
    tokens: Tokens
    access_keys: AccessKeys
    access_key_feed: AccessKeyFeed
    server_keys: ServerKeys
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def server_instance(self) -> str:
        return self.registry.info.server_instance

    async def start(self) -> None:
        await self.hub.start()
        await self.access_key_feed.start()
        await self.grpc_server.start()
        self._tasks.append(asyncio.create_task(metrics.refresh_collector_gauge(self.store, GAUGE_REFRESH_SECONDS)))
        await set_serving(self.health, [SERVICE_NAME], serving=True)

    async def stop(self, grace: float | None) -> None:
        await set_serving(self.health, [SERVICE_NAME], serving=False)
        await self.hub.close()
        await self.access_key_feed.close()
        await self.grpc_server.stop(grace)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.dispose()


def _listener(config: RegistryConfig, table: str) -> ChannelListener | None:
    """The LISTEN connection waking a feed of `table` (PostgreSQL and `--watch-wakeup listen` only)."""
    if not config.watch_listen:
        return None
    channel = channel_name(SCHEMA, table)
    return ChannelListener.for_database(config.database_url, channel, application_name=f"outpost-{SERVICE}-listen")


async def build_server(
    config: RegistryConfig, *, clock: Callable[[], datetime] = utc_now
) -> tuple[RegistryServer, int]:
    """Migrate, wire and bind (port 0 picks a free one); returns the server and its port.

    `clock` is the registry's time (tests move it to age collectors without sleeping).
    """
    started_at = clock()
    box = _secret_box(config)
    try:
        store, server_instance = await open_store(config.database_url, started_at)
    except Exception as exc:  # driver errors have no common base; name it and stop
        raise StartupError(open_failure(config.database_url, exc)) from exc
    hub = WatchHub(
        store,
        poll_interval=config.watch_poll_interval,
        bookmark_interval=config.watch_bookmark_interval,
        listener=_listener(config, "collector_events"),
    )
    info = ServerInfo(
        server_instance=server_instance,
        version=VERSION,
        started_at=started_at,
        database=redact(config.database_url),
        heartbeat_interval_seconds=config.heartbeat_interval,
    )
    registry = Registry(store, hub, info, clock, PendingGate(config.pending_limits))
    credentials = Credentials(store, box)
    tokens = Tokens(store, clock)
    server_keys = ServerKeys(store, box, clock)
    access_key_feed = AccessKeyFeed(
        AccessKeyEvents(store, box),
        poll_interval=config.watch_poll_interval,
        bookmark_interval=config.watch_bookmark_interval,
        listener=_listener(config, "access_keys"),
    )
    access_keys = AccessKeys(store, box, server_keys, access_key_feed, clock)
    enrollment_tokens = EnrollmentTokens(store, clock)
    try:
        peers = service_tokens.load_peer_digests(config.peer_tokens)
    except (OSError, ValueError) as exc:
        await store.dispose()
        raise StartupError(f"cannot read a peer token: {exc}") from exc
    trail = audit.SqlAuditTrail(store.engine, AUDIT_EVENTS)
    auth = AuthInterceptor(Authenticator(peers, tokens.authenticate), service=SERVICE, trail=trail)
    server, health_servicer = build_grpc_server(service_names=[SERVICE_NAME, audit.SERVICE_NAME], auth=auth)
    servicer = RegistryServicer(
        registry,
        credentials,
        tokens,
        access_keys=access_keys,
        access_key_feed=access_key_feed,
        server_keys=server_keys,
        enrollment_tokens=enrollment_tokens,
    )
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer, server)
    audit.add_audit_service(server, trail)
    try:
        await credentials.check_secret_key()
        if config.admin_token_file is not None:
            await tokens.bootstrap(config.admin_token_file)
        await server_keys.ensure_current(replace_unreadable=config.secret_key_file is None)
        if config.bootstrap_access_key_file is not None:
            await access_keys.bootstrap(config.bootstrap_access_key_file)
        port = bind(server, config.listen, config.tls, "registry gRPC")
    except errors.FailedPrecondition as exc:
        await store.dispose()
        raise StartupError(str(exc)) from exc
    except BaseException:
        await store.dispose()
        raise
    built = RegistryServer(
        server, health_servicer, registry, hub, store, tokens, access_keys, access_key_feed, server_keys
    )
    return built, port


def _secret_box(config: RegistryConfig) -> SecretBox:
    if config.secret_key_file is None:
        log.warning("secret_key_ephemeral", advice="credentials created now are unreadable after a restart")
        return SecretBox(os.urandom(SECRET_KEY_BYTES))
    if config.require_secret_key and not config.secret_key_file.exists():
        raise StartupError(
            f"secret key file {config.secret_key_file} does not exist and --require-secret-key is set: "
            "mount the key that encrypts this installation's credentials (or, for a new installation, "
            "create 32 random bytes: head -c 32 /dev/urandom > FILE)"
        )
    try:
        secret_key = load_or_create_secret_key(config.secret_key_file)
    except SecretKeyError as exc:
        raise StartupError(str(exc)) from exc
    box = SecretBox(secret_key.key)
    if secret_key.created:
        log.warning(
            "secret_key_created",
            path=str(config.secret_key_file),
            key_id=box.key_id,
            advice="back this file up: credentials cannot be decrypted without it"
            + ("" if is_sqlite(config.database_url) else "; every registry replica needs the same file"),
        )
    return box


async def serve(config: RegistryConfig) -> None:
    """Run until SIGTERM/SIGINT, then drain and return."""
    await serve_until_signalled(
        SERVICE,
        config,
        lambda: build_server(config),
        startup_error=StartupError,
        ready_fields=lambda server: {"server_instance": server.server_instance},
    )


class _OneLineParser(argparse.ArgumentParser):
    """Bad configuration ends the process with one clear line, not a usage screen."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _heartbeat(text: str) -> int:
    try:
        value: int = cfg.positive(int)(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole seconds, got {text!r}") from None
    if value > MAX_HEARTBEAT_SECONDS:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_HEARTBEAT_SECONDS}, got {text}")
    return value


def _env(key: str, default: str | None = None) -> str | None:
    value: str | None = cfg.env_default(SERVICE, key, default)
    return value


def build_parser() -> argparse.ArgumentParser:
    env = _env
    parser = _OneLineParser(
        prog="outpost-registry",
        formatter_class=cfg.HelpFormatter,
        description="The Outpost registry: collectors, credentials and admin approval. "
        "Every flag can also be set as OUTPOST_REGISTRY_<FLAG> (e.g. OUTPOST_REGISTRY_LISTEN). "
        "`outpost-registry migrate --help`: migrate the database and exit.",
    )
    parser.add_argument("--listen", type=cfg.host_port, default=env("listen", "127.0.0.1:50051"))
    parser.add_argument(
        "--metrics-listen",
        type=cfg.optional_host_port,
        default=env("metrics_listen", "127.0.0.1:9101"),
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
        "--heartbeat-interval",
        type=_heartbeat,
        default=env("heartbeat_interval", "30"),
        help="seconds between collector heartbeats; a collector not heard from for 2 is offline",
    )
    parser.add_argument(
        "--secret-key-file",
        type=Path,
        default=env("secret_key_file"),
        help="32-byte key (mode 0600) encrypting credentials at rest; created if absent "
        "(default: <data-dir>/registry-secret.key; env OUTPOST_REGISTRY_SECRET_KEY_FILE)",
    )
    parser.add_argument(
        "--require-secret-key",
        action="store_true",
        default=(env("require_secret_key") or "").lower() in ("1", "true", "yes"),
        help="refuse to start when the secret key file does not exist, instead of creating one: for "
        "deployments that mount the key (a Kubernetes Secret), where a new key would leave the stored "
        "credentials unreadable (env OUTPOST_REGISTRY_REQUIRE_SECRET_KEY=1)",
    )
    parser.add_argument(
        "--admin-token-file",
        type=Path,
        default=env("admin_token_file"),
        help="first start: the bootstrap admin token is written here (mode 0600), or read from here "
        "when the file exists (default: <data-dir>/admin.token)",
    )
    parser.add_argument(
        "--bootstrap-access-key-file",
        type=Path,
        default=env("bootstrap_access_key_file"),
        help="first start: when no access key exists, the access key `bootstrap` is written here (mode 0600), "
        "or registered from here when the file exists (default: <data-dir>/access.key)",
    )
    parser.add_argument(
        "--max-pending",
        type=cfg.positive(int),
        default=env("max_pending", "1000"),
        help="collectors that may wait as pending; beyond it newcomers are refused (registered ones never are)",
    )
    parser.add_argument(
        "--max-pending-per-network",
        type=cfg.positive(int),
        default=env("max_pending_per_network", "100"),
        help="pending collectors from one source network (IPv4 /24, IPv6 /64)",
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
    parser.add_argument(
        "--watch-bookmark-interval",
        type=cfg.positive(float),
        default=env("watch_bookmark_interval", "10"),
        help="seconds of silence after which a watch stream gets a bookmark: gateways call their cached "
        "collectors stale without one for --collector-cache-max-staleness (ADR 0034)",
    )
    service_tokens.add_identity_flags(parser, SERVICE, calls_peers=False, called_by=True)
    cfg.add_watch_flags(parser, SERVICE)
    cfg.add_common_flags(parser, SERVICE)
    return parser


def parse_config(argv: Sequence[str] | None = None) -> RegistryConfig:
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
    return RegistryConfig(
        database_url=url,
        listen=args.listen,
        metrics_listen=args.metrics_listen,
        heartbeat_interval=args.heartbeat_interval,
        tls=tls,
        ready_file=args.ready_file,
        log_format=args.log_format,
        log_level=args.log_level,
        shutdown_grace=args.shutdown_grace,
        pending_limits=PendingLimits(max_pending=args.max_pending, max_per_network=args.max_pending_per_network),
        secret_key_file=Path(args.secret_key_file or args.data_dir / DEFAULT_KEY_FILE_NAME),
        require_secret_key=args.require_secret_key,
        admin_token_file=Path(args.admin_token_file or args.data_dir / DEFAULT_ADMIN_TOKEN_FILE_NAME),
        bootstrap_access_key_file=Path(args.bootstrap_access_key_file or args.data_dir / DEFAULT_ACCESS_KEY_FILE_NAME),
        peer_tokens=peer_tokens,
        watch_listen=args.watch_wakeup == "listen",
        watch_bookmark_interval=float(args.watch_bookmark_interval),
    )


async def migrate_database(url: str) -> None:
    """`outpost-registry migrate`: what start-up does to the database (tables, server instance), then close."""
    store, _server_instance = await open_store(url, utc_now())
    await store.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    if is_migrate_command(argv):
        migrate_main(SERVICE, argv, migrate_database)
    config = parse_config(argv)
    configure_logging(config.log_format, config.log_level, service=SERVICE)
    try:
        asyncio.run(serve(config))
    except StartupError as exc:
        print(f"outpost-registry: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    exit_now(0)  # everything is closed: no interpreter teardown to wait for


if __name__ == "__main__":
    main()
