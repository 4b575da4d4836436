"""outpost-gateway: wiring only. Config -> registry client -> hub -> listeners.

Start-up order matters: the registry must answer (server instance, heartbeat interval)
and the three watches (the registry's collector states and access keys, the scheduler's
dispatch) must deliver their first bookmark before any listener accepts a collector, so
no admin decision, no revocation and no queued run can be missed; the access-key watch
is ready only once the server's static keys and every access key were read; the
dispatch watch only once the scheduler's settings were read, so every collector's first
session is told the stored check interval. The inventory's tables are migrated before that.

On SIGTERM the gateway drains (ADR 0010, "Drain and failover"): health goes NOT_SERVING,
new connections are told to go elsewhere, and every session is told
Disconnect(SHUTTING_DOWN, retry) after the frame it is handling, so a commit in flight
finishes and is acked or not, never half. The gateway waits up to --drain-seconds for the
sessions to end, stops the listeners, waits for commits still running (a session cut off
at the deadline does not cut its commit off), reports the disconnects, and only then
disposes of the database engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog
from grpc_health.v1 import health as grpc_health

from outpost import errors
from outpost.auth import bearer, service_tokens
from outpost.auth.interceptor import Authenticator, AuthInterceptor
from outpost.auth.registry_tokens import RegistryTokens
from outpost.config import HelpFormatter, add_common_flags, add_secret_flags, env_default, positive, secret_value
from outpost.db import default_sqlite_url
from outpost.db_create import open_failure
from outpost.gateway.v1 import gateway_pb2_grpc
from outpost.logs import configure_logging
from outpost.migrate_command import is_migrate_command, migrate_main
from outpost.process import exit_now
from outpost.ready import write_ready_file
from outpost.runtime import (
    TlsFiles,
    bind,
    build_grpc_server,
    install_shutdown_signals,
    is_loopback,
    raise_open_file_limit,
    set_serving,
    start_metrics,
)
from outpost.session.codec import DEFAULT_MAX_FRAME_BYTES
from services.gateway.access_keys import AccessKeyCache, ServerKeys, access_key_watch, refresh_server_keys_every
from services.gateway.api.gateway_servicer import GatewayServicer, ListenerInfo
from services.gateway.api.inventory_servicer import InventoryServicer
from services.gateway.domain.check_interval import SECONDS_PER_MINUTE, CheckInterval
from services.gateway.inventory.domain.lifecycle import (
    DEFAULT_RETIRE_AFTER_DAYS,
    DEFAULT_RETIRE_AFTER_MISSED_RUNS,
    RetirementRule,
)
from services.gateway.inventory.ingest import BatchIngest
from services.gateway.inventory.ingest_gate import DEFAULT_COMMIT_TIMEOUT_SECONDS, DEFAULT_MAX_IN_FLIGHT, IngestGate
from services.gateway.inventory.store.database import open_inventory
from services.gateway.peers.collector_cache import DEFAULT_MAX_STALENESS_SECONDS, CollectorCache, report_freshness
from services.gateway.peers.registry_client import Bookmark, RegistryClient
from services.gateway.peers.resumable_watch import ResumableWatch
from services.gateway.peers.scheduler_client import DispatchBookmark, SchedulerClient
from services.gateway.sessions.admission import Admission, FailureLimits
from services.gateway.sessions.context import GatewayContext, Shutdown
from services.gateway.sessions.hub import CollectorChange, SessionHub
from services.gateway.sessions.lease_renewal import LeaseRenewer
from services.gateway.sessions.local_verification import Lane, RegistryLanes
from services.gateway.sessions.reports import SessionReporter
from services.gateway.sessions.run_routing import Dispatcher
from services.gateway.sessions.sealed import SealingPolicy
from services.gateway.sessions.stale_reports import StaleReports
from services.gateway.sessions.work import WorkContext
from services.gateway.transports.client_address import TrustedProxies
from services.gateway.transports.grpc_stream import (
    DEFAULT_MAX_CONCURRENT_STREAMS,
    agent_service_handler,
    listener_options,
)
from services.gateway.transports.grpc_stream import SERVICE_NAME as AGENT_SERVICE
from services.gateway.transports.http_poll import PollSessions, add_poll_route
from services.gateway.transports.tcp import ProxyProtocolPolicy, TcpListener, start_tcp_server
from services.gateway.transports.websocket import build_websocket_app, start_websocket_site

log = structlog.get_logger(__name__)
SERVICE = "gateway"
ADMIN_SERVICE = "outpost.gateway.v1.GatewayService"
INVENTORY_SERVICE = "outpost.gateway.v1.InventoryService"
REGISTRY_WAIT_SECONDS = 60.0
FINAL_REPORT_SECONDS = 2.0


@dataclass(frozen=True)
class GatewayConfig:
    grpc_listen: str
    admin_listen: str
    ws_listen: str
    tcp_listen: str
    metrics_listen: str
    registry: str
    registry_ca_file: str | None
    scheduler: str
    database_url: str
    gateway_id: str
    tls: TlsFiles | None
    max_frame_bytes: int
    handshake_timeout: float
    max_unauthenticated: int
    failure_limits: FailureLimits
    grpc_max_concurrent_streams: int
    drain_seconds: float
    max_commits_in_flight: int
    commit_timeout: float
    retirement: RetirementRule
    ready_file: str | None
    log_format: str
    log_level: str
    token_file: Path | None = None
    check_minute_seconds: int = SECONDS_PER_MINUTE
    allow_first_contact: bool = True
    server_key_refresh: float = 30.0
    """Seconds between reads of the server keys: how soon an announced rotation reaches this gateway."""
    trusted_proxies: TrustedProxies = dataclasses.field(default_factory=TrustedProxies)
    """Peers whose forwarded headers (and, on TCP, PROXY protocol headers) name the collector (ADR 0026)."""
    tcp_proxy_protocol: bool = False
    verify_known_collectors: bool = True
    """Verify registered collectors' handshakes from the watched cache (ADR 0034)."""
    collector_cache_max_staleness: float = DEFAULT_MAX_STALENESS_SECONDS
    max_registry_handshakes: int = 32
    """Handshake calls to the registry in flight for collectors the cache knows."""
    max_first_contacts: int = 8
    """Handshake calls to the registry in flight for collectors the cache does not know."""


def parse_args(argv: list[str] | None = None) -> GatewayConfig:
    e = lambda key, default=None: env_default(SERVICE, key, default)  # noqa: E731
    p = argparse.ArgumentParser(
        prog="outpost-gateway",
        formatter_class=HelpFormatter,
        description="Outpost ingest gateway: collector sessions over gRPC, WebSocket and TCP. "
        "`outpost-gateway migrate --help`: migrate the inventory's tables and exit.",
    )
    p.add_argument(
        "--grpc-listen",
        default=e("grpc_listen", "127.0.0.1:50061"),
        help="public gRPC agent listener: the agent stream and health only",
    )
    p.add_argument(
        "--admin-listen",
        default=e("admin_listen", "127.0.0.1:50062"),
        help="internal gRPC listener: sessions and inventory for admin tokens, health, reflection",
    )
    p.add_argument(
        "--ws-listen", default=e("ws_listen", "127.0.0.1:8080"), help="WebSocket agents at /v1/agent; empty disables"
    )
    p.add_argument(
        "--tcp-listen", default=e("tcp_listen", "127.0.0.1:6600"), help="length-prefixed TCP agents; empty disables"
    )
    p.add_argument("--metrics-listen", default=e("metrics_listen", "127.0.0.1:9102"))
    p.add_argument("--registry", default=e("registry", "127.0.0.1:50051"), help="registry gRPC address")
    p.add_argument("--registry-ca-file", default=e("registry_ca_file"), help="CA for TLS registry/scheduler")
    p.add_argument("--scheduler", default=e("scheduler", "127.0.0.1:50071"), help="scheduler gRPC address")
    add_secret_flags(
        p,
        SERVICE,
        "database_url",
        help="inventory database (postgresql+asyncpg://...); default: gateway.db under --data-dir",
    )
    p.add_argument(
        "--gateway-id",
        default=e("gateway_id", f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"),
        help="this instance's name in leases and logs (default: <hostname>-<6 random hex digits>)",
    )
    p.add_argument("--tls-cert", default=e("tls_cert"), help="certificate (PEM) for every agent listener")
    p.add_argument("--tls-key", default=e("tls_key"))
    p.add_argument("--max-frame-bytes", type=positive(int), default=int(e("max_frame_bytes", DEFAULT_MAX_FRAME_BYTES)))
    p.add_argument("--handshake-timeout", type=positive(float), default=float(e("handshake_timeout", 10.0)))
    p.add_argument("--max-unauthenticated", type=positive(int), default=int(e("max_unauthenticated", 1000)))
    p.add_argument(
        "--max-failed-handshakes",
        type=positive(int),
        default=int(e("max_failed_handshakes", 10)),
        help="refused handshakes (after a valid proof) per collector key and address in a window; then RATE_LIMITED",
    )
    p.add_argument(
        "--max-failed-handshakes-per-address",
        type=positive(int),
        default=int(e("max_failed_handshakes_per_address", 200)),
        help="failed handshakes of any kind per remote address in a window: the ceiling for garbage (NATs share it)",
    )
    p.add_argument(
        "--failed-handshake-window",
        type=positive(float),
        default=float(e("failed_handshake_window", 60.0)),
        help="seconds of a failed-handshake counting window; a blocked collector is told when it ends",
    )
    p.add_argument(
        "--grpc-max-concurrent-streams",
        type=positive(int),
        default=int(e("grpc_max_concurrent_streams", DEFAULT_MAX_CONCURRENT_STREAMS)),
        help="calls one connection to the gRPC listener may have open at once",
    )
    p.add_argument("--drain-seconds", type=positive(float), default=float(e("drain_seconds", 10.0)))
    p.add_argument(
        "--max-commits-in-flight",
        type=positive(int),
        default=int(e("max_commits_in_flight", DEFAULT_MAX_IN_FLIGHT)),
        help="result batch commits running at once, all sessions together; more wait, then are throttled",
    )
    p.add_argument(
        "--commit-timeout",
        type=positive(float),
        default=float(e("commit_timeout", DEFAULT_COMMIT_TIMEOUT_SECONDS)),
        help="seconds one commit (and its wait for a slot) may take before the batch is throttled",
    )
    p.add_argument(
        "--check-minute-seconds",
        type=positive(int),
        default=int(e("check_minute_seconds", SECONDS_PER_MINUTE)),
        help="for tests only: seconds in one minute of collector_check_minutes (default 60), "
        "so a test's polling collectors check in every few seconds",
    )
    p.add_argument(
        "--retire-after-missed-runs",
        type=_non_negative,
        default=int(e("retire_after_missed_runs", DEFAULT_RETIRE_AFTER_MISSED_RUNS)),
        help="retire a device after this many successful runs in a row that covered it and did not find it; 0: never",
    )
    p.add_argument(
        "--retire-after-days",
        type=_non_negative,
        default=int(e("retire_after_days", DEFAULT_RETIRE_AFTER_DAYS)),
        help="retire a device not seen for this many days (checked when a run of its zone ends); 0: never",
    )
    p.add_argument(
        "--allow-first-contact",
        action=argparse.BooleanOptionalAction,
        default=str(e("allow_first_contact", "true")).lower() not in ("0", "false", "no"),
        help="accept sealed handshakes from collectors that do not have this server's key pinned yet "
        "(Noise XX, trust on first use); --no-allow-first-contact admits only collectors whose access-key "
        "file carries the server key or that pinned it before (IK) (env OUTPOST_GATEWAY_ALLOW_FIRST_CONTACT)",
    )
    p.add_argument(
        "--server-key-refresh",
        type=positive(float),
        default=float(e("server_key_refresh", 30.0)),
        help="seconds between reads of the server's Noise keys from the registry: an announced rotation "
        "(outpostctl server rotate-key) reaches this gateway and its live collectors within this "
        "(env OUTPOST_GATEWAY_SERVER_KEY_REFRESH)",
    )
    p.add_argument(
        "--trusted-proxies",
        default=e("trusted_proxies", ""),
        help="comma-separated addresses or CIDRs of load balancers and ingress controllers in front of the "
        "gateway: only their Forwarded / X-Forwarded-For (HTTP, gRPC metadata) and PROXY protocol headers (TCP) "
        "are believed; empty: every peer is the collector itself (env OUTPOST_GATEWAY_TRUSTED_PROXIES)",
    )
    p.add_argument(
        "--tcp-proxy-protocol",
        action=argparse.BooleanOptionalAction,
        default=str(e("tcp_proxy_protocol", "false")).lower() in ("1", "true", "yes"),
        help="the TCP agent listener reads a PROXY protocol header (v1 or v2) from --trusted-proxies peers, "
        "required from them and refused from anyone else (env OUTPOST_GATEWAY_TCP_PROXY_PROTOCOL)",
    )
    p.add_argument(
        "--verify-known-collectors",
        action=argparse.BooleanOptionalAction,
        default=str(e("verify_known_collectors", "true")).lower() not in ("0", "false", "no"),
        help="verify registered collectors' handshakes from this gateway's watched cache, without a registry "
        "call (ADR 0034); --no-verify-known-collectors asks the registry for every handshake",
    )
    p.add_argument(
        "--collector-cache-max-staleness",
        type=positive(float),
        default=float(e("collector_cache_max_staleness", DEFAULT_MAX_STALENESS_SECONDS)),
        help="seconds without an event or bookmark from the registry's collector watch after which the cache "
        "admits no one: handshakes go to the registry (refused with a retry-after when it does not answer). "
        "Keep it above twice the registry's --watch-bookmark-interval",
    )
    p.add_argument(
        "--max-registry-handshakes",
        type=positive(int),
        default=int(e("max_registry_handshakes", 32)),
        help="handshake calls to the registry in flight for known collectors; 2x as many wait (about what the "
        "registry finishes within the handshake timeout), the rest are refused with a retry-after",
    )
    p.add_argument(
        "--max-first-contacts",
        type=positive(int),
        default=int(e("max_first_contacts", 8)),
        help="handshake calls to the registry in flight for collectors this gateway does not know (first "
        "contacts): their own bound, so newcomers cannot starve reconnecting collectors",
    )
    p.add_argument("--ready-file", default=e("ready_file"))
    p.add_argument("--data-dir", default=e("data_dir", ".outpost"), help="where the SQLite inventory lives by default")
    service_tokens.add_identity_flags(p, SERVICE, calls_peers=True, called_by=False)
    add_common_flags(p, SERVICE)
    a = p.parse_args(argv)
    if bool(a.tls_cert) != bool(a.tls_key):
        p.error("--tls-cert and --tls-key go together")
    try:
        trusted_proxies = TrustedProxies.parse(a.trusted_proxies)
    except ValueError as exc:
        p.error(str(exc))
    if a.tcp_proxy_protocol and not trusted_proxies:
        p.error("--tcp-proxy-protocol needs --trusted-proxies: the load balancers' addresses or CIDRs")
    return GatewayConfig(
        grpc_listen=a.grpc_listen,
        admin_listen=a.admin_listen,
        ws_listen=a.ws_listen,
        tcp_listen=a.tcp_listen,
        metrics_listen=a.metrics_listen,
        registry=a.registry,
        registry_ca_file=a.registry_ca_file,
        scheduler=a.scheduler,
        database_url=secret_value(p, a, "database_url") or default_sqlite_url(Path(a.data_dir), SERVICE),
        gateway_id=a.gateway_id,
        tls=TlsFiles(a.tls_cert, a.tls_key) if a.tls_cert else None,
        max_frame_bytes=a.max_frame_bytes,
        handshake_timeout=a.handshake_timeout,
        max_unauthenticated=a.max_unauthenticated,
        failure_limits=FailureLimits(
            max_per_key=a.max_failed_handshakes,
            max_per_address=a.max_failed_handshakes_per_address,
            window=a.failed_handshake_window,
        ),
        grpc_max_concurrent_streams=a.grpc_max_concurrent_streams,
        drain_seconds=a.drain_seconds,
        max_commits_in_flight=a.max_commits_in_flight,
        commit_timeout=a.commit_timeout,
        retirement=RetirementRule(missed_runs=a.retire_after_missed_runs, days=a.retire_after_days),
        ready_file=a.ready_file,
        check_minute_seconds=a.check_minute_seconds,
        allow_first_contact=a.allow_first_contact,
        server_key_refresh=a.server_key_refresh,
        trusted_proxies=trusted_proxies,
        tcp_proxy_protocol=a.tcp_proxy_protocol,
        verify_known_collectors=a.verify_known_collectors,
        collector_cache_max_staleness=a.collector_cache_max_staleness,
        max_registry_handshakes=a.max_registry_handshakes,
        max_first_contacts=a.max_first_contacts,
        log_format=a.log_format,
        log_level=a.log_level,
        token_file=a.token_file,
    )


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or more, got {text}")
    return value


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _server_ssl_context(tls: TlsFiles | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


async def _wait_for_registry(registry: RegistryClient, address: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + REGISTRY_WAIT_SECONDS
    while True:
        try:
            return await registry.server_info()
        except errors.OutpostError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"registry at {address} did not answer within {REGISTRY_WAIT_SECONDS:g}s: {exc.details}"
                ) from exc
            log.info("registry_waited", registry=address, code=exc.status)
            await asyncio.sleep(0.5)


async def serve(config: GatewayConfig) -> None:
    started_at = time.time()
    stop = install_shutdown_signals()
    open_files = raise_open_file_limit()
    try:
        secret = bearer.read_secret_file(config.token_file) if config.token_file else None
    except (OSError, ValueError) as exc:
        raise SystemExit(f"outpost-gateway: cannot read --token-file: {exc}") from None
    channel = service_tokens.peer_channel(config.registry, config.registry_ca_file, secret)
    scheduler_channel = service_tokens.peer_channel(config.scheduler, config.registry_ca_file, secret)
    registry = RegistryClient(channel)
    scheduler = SchedulerClient(scheduler_channel)
    info = await _wait_for_registry(registry, config.registry)
    try:
        inventory = await open_inventory(config.database_url)
    except Exception as exc:  # driver errors have no common base; name it and stop
        raise SystemExit(f"outpost-gateway: {open_failure(config.database_url, exc)}") from None
    hub = SessionHub()
    if config.check_minute_seconds != SECONDS_PER_MINUTE:
        log.warning("check_minute_shortened", seconds_per_minute=config.check_minute_seconds, advice="for tests only")
    dispatcher = Dispatcher(hub, CheckInterval(seconds_per_minute=config.check_minute_seconds))
    gate = IngestGate(max_in_flight=config.max_commits_in_flight, commit_timeout=config.commit_timeout)
    stale_reports = StaleReports(config.gateway_id, scheduler)
    reporter = SessionReporter(registry, config.gateway_id, hub, info.heartbeat_interval)
    leases = LeaseRenewer(scheduler, hub, config.gateway_id, info.heartbeat_interval)
    access_keys = AccessKeyCache()
    server_keys = ServerKeys()
    cache = CollectorCache(registry.collector_credentials, max_staleness=config.collector_cache_max_staleness)
    ctx = GatewayContext(
        gateway_id=config.gateway_id,
        server_instance=info.server_instance,
        heartbeat_interval=info.heartbeat_interval,
        handshake_timeout=config.handshake_timeout,
        registry=registry,
        hub=hub,
        reporter=reporter,
        admission=Admission(max_unauthenticated=config.max_unauthenticated, limits=config.failure_limits),
        work=WorkContext(
            config.gateway_id,
            scheduler,
            registry,
            BatchIngest(inventory, rule=config.retirement, on_stale=stale_reports.counted),
            gate,
        ),
        dispatcher=dispatcher,
        access_keys=access_keys,
        server_keys=server_keys,
        sealing=SealingPolicy(
            allow_first_contact=config.allow_first_contact, max_envelope_bytes=config.max_frame_bytes
        ),
        trusted_proxies=config.trusted_proxies,
        registry_lanes=RegistryLanes(
            known=Lane("known", config.max_registry_handshakes, 2 * config.max_registry_handshakes, 2),
            first_contact=Lane("first_contact", config.max_first_contacts, 2 * config.max_first_contacts, 5),
        ),
        collector_cache=cache if config.verify_known_collectors else None,
    )

    async def read_settings() -> None:
        dispatcher.settings_read(await scheduler.settings())

    def apply_collector_change(item: object) -> None:
        cache.apply(item)  # drop the entry first: no handshake admits on what this event ends
        if isinstance(item, CollectorChange):
            hub.apply(item)

    registry_watch = (
        ResumableWatch("registry", cache.observe(registry.watch), apply_collector_change, Bookmark, resync=cache.resync)
        if config.verify_known_collectors
        else ResumableWatch("registry", registry.watch, hub.apply, Bookmark)
    )
    watches = [
        registry_watch,
        ResumableWatch("dispatch", scheduler.watch, dispatcher.apply, DispatchBookmark, resync=read_settings),
        access_key_watch(registry, access_keys, server_keys, hub),
    ]
    background = [asyncio.create_task(w.run()) for w in watches]
    background += [asyncio.create_task(reporter.run()), asyncio.create_task(leases.run())]
    if config.verify_known_collectors:
        background += [asyncio.create_task(cache.run()), asyncio.create_task(report_freshness(cache))]
    background.append(
        asyncio.create_task(refresh_server_keys_every(config.server_key_refresh, registry, server_keys, hub))
    )
    for watch, address in zip(watches, (config.registry, config.scheduler, config.registry), strict=True):
        try:
            async with asyncio.timeout(REGISTRY_WAIT_SECONDS):
                await watch.ready.wait()
        except TimeoutError:
            raise SystemExit(
                f"{watch.name} watch at {address} did not open within {REGISTRY_WAIT_SECONDS:g}s"
            ) from None

    listeners: list[ListenerInfo] = []
    server, health = build_grpc_server(
        service_names=[AGENT_SERVICE],
        auth=AuthInterceptor.for_public_listener(SERVICE),
        reflection_enabled=False,
        extra_options=[
            ("grpc.max_receive_message_length", config.max_frame_bytes),
            *listener_options(
                max_concurrent_streams=config.grpc_max_concurrent_streams,
                handshake_timeout=config.handshake_timeout,
            ),
        ],
    )
    server.add_generic_rpc_handlers([agent_service_handler(ctx)])
    grpc_port = bind(server, config.grpc_listen, config.tls, "gateway gRPC")
    grpc_host = _split(config.grpc_listen)[0]
    listeners.append(ListenerInfo("grpc", f"{grpc_host}:{grpc_port}", config.tls is not None))
    admin_server, admin_health = build_grpc_server(
        service_names=[ADMIN_SERVICE, INVENTORY_SERVICE],
        auth=AuthInterceptor(Authenticator({}, RegistryTokens(channel)), service=SERVICE),
    )
    gateway_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryServicer(inventory), admin_server)
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(
        GatewayServicer(config.gateway_id, hub, listeners, started_at), admin_server
    )
    admin_port = bind(admin_server, config.admin_listen, config.tls, "gateway admin gRPC")
    admin_host = _split(config.admin_listen)[0]
    listeners.append(ListenerInfo("admin", f"{admin_host}:{admin_port}", config.tls is not None))
    await server.start()
    await admin_server.start()

    ssl_context = _server_ssl_context(config.tls)
    poll_sessions = PollSessions(ctx)
    background.append(asyncio.create_task(poll_sessions.expire()))
    ws_runner = tcp_server = None
    ready: dict[str, str] = {"grpc": f"{grpc_host}:{grpc_port}", "admin": f"{admin_host}:{admin_port}"}
    if config.ws_listen:
        host, port = _split(config.ws_listen)
        _warn_plaintext(host, ssl_context, "websocket")
        app = build_websocket_app(ctx, config.max_frame_bytes)
        add_poll_route(app, poll_sessions)
        ws_runner, ws_port = await start_websocket_site(app, host, port, ssl_context)
        listeners.append(ListenerInfo("websocket", f"{host}:{ws_port}", ssl_context is not None))
        ready["websocket"] = f"{host}:{ws_port}"
    if config.tcp_listen:
        host, port = _split(config.tcp_listen)
        _warn_plaintext(host, ssl_context, "tcp")
        proxy = None
        if config.tcp_proxy_protocol:
            proxy = ProxyProtocolPolicy(config.trusted_proxies, config.handshake_timeout)
        tcp_server, tcp_port = await start_tcp_server(ctx, host, port, ssl_context, config.max_frame_bytes, proxy=proxy)
        listeners.append(ListenerInfo("tcp", f"{host}:{tcp_port}", ssl_context is not None))
        ready["tcp"] = f"{host}:{tcp_port}"
    metrics_port = start_metrics(config.metrics_listen)
    if metrics_port:
        ready["metrics"] = f"{_split(config.metrics_listen)[0]}:{metrics_port}"
    await set_serving(health, [AGENT_SERVICE], True)
    await set_serving(admin_health, [ADMIN_SERVICE, INVENTORY_SERVICE], True)
    log.info(
        "gateway_started",
        gateway_id=config.gateway_id,
        server_instance=info.server_instance,
        server_key_fingerprint=server_keys.fingerprint(),
        access_keys=access_keys.valid_count(),
        open_file_limit=open_files,
        trusted_proxies=str(config.trusted_proxies),
        tcp_proxy_protocol=config.tcp_proxy_protocol,
        **ready,
    )
    write_ready_file(config.ready_file, service=SERVICE, gateway_id=config.gateway_id, **ready)

    await stop.wait()
    await _drain(config, ctx, health, tcp_server, poll_sessions)
    await server.stop(grace=1.0)
    await admin_server.stop(grace=1.0)
    if ws_runner is not None:
        await ws_runner.cleanup()
    unfinished = await gate.close(timeout=config.commit_timeout)
    await stale_reports.close(timeout=FINAL_REPORT_SECONDS)
    for task in background:
        task.cancel()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FINAL_REPORT_SECONDS):
            await reporter.flush()  # the sessions that just ended, so the registry need not wait
    await inventory.close()
    await channel.close()
    await scheduler_channel.close()
    log.info("gateway_stopped", sessions_left=len(ctx.connections), commits_unfinished=unfinished)


async def _drain(
    config: GatewayConfig,
    ctx: GatewayContext,
    health_servicer: grpc_health.aio.HealthServicer,
    tcp_server: TcpListener | None,
    poll_sessions: PollSessions,
) -> None:
    """Refuse new sessions, tell every session to leave between frames, wait for them to go."""
    log.info("gateway_draining", sessions=len(ctx.connections) + len(poll_sessions))
    ctx.draining = True
    await set_serving(health_servicer, [AGENT_SERVICE], False)
    if tcp_server is not None:
        tcp_server.close()
    for deliver in list(ctx.connections.values()):
        deliver(Shutdown())  # wakes an idle loop; a busy one sees `draining` after its frame
    await poll_sessions.shutdown()
    deadline = time.monotonic() + config.drain_seconds
    while (ctx.connections or len(ctx.hub)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _warn_plaintext(host: str, ssl_context: ssl.SSLContext | None, what: str) -> None:
    if ssl_context is None and not is_loopback(host):
        log.warning(
            "plaintext_listener_on_network",
            listener=what,
            host=host,
            advice="give --tls-cert and --tls-key; plaintext is for local development only",
        )


async def migrate_database(url: str) -> None:
    """`outpost-gateway migrate`: the inventory's tables as start-up migrates them, then close."""
    inventory = await open_inventory(url)
    await inventory.close()


def main(argv: list[str] | None = None) -> None:
    if is_migrate_command(argv):
        migrate_main(SERVICE, argv, migrate_database)
    config = parse_args(argv)
    configure_logging(config.log_format, config.log_level, service=SERVICE)  # type: ignore[arg-type]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config))
    exit_now(0)  # everything is closed: no interpreter teardown to wait for
