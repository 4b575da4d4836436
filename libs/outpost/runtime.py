"""What every Outpost service process runs besides its own logic.

A gRPC server with health and reflection and the error-mapping interceptor; a Prometheus
`/metrics` endpoint; and graceful shutdown on SIGTERM/SIGINT: health flips to
NOT_SERVING, in-flight calls get a grace period, then the process exits 0.
"""

from __future__ import annotations

import resource
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from outpost.db import redact
from outpost.grpc_errors import ErrorMappingInterceptor
from outpost.process import install_shutdown_signals, is_loopback
from outpost.ready import write_ready_file
from outpost.version import VERSION

log = structlog.get_logger(__name__)

MAX_ADMIN_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class TlsFiles:
    cert_file: str
    key_file: str

    def server_credentials(self) -> grpc.ServerCredentials:
        with open(self.cert_file, "rb") as cert, open(self.key_file, "rb") as key:
            return grpc.ssl_server_credentials([(key.read(), cert.read())])


def build_grpc_server(
    *,
    service_names: Iterable[str],
    auth: grpc.aio.ServerInterceptor | None,
    reflection_enabled: bool = True,
    extra_options: Iterable[tuple[str, int]] = (),
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A grpc.aio server with health, reflection and error mapping; add servicers, then bind.

    `auth` (`outpost.auth.interceptor.AuthInterceptor`) guards every method of an admin
    or internal listener; None only for the gateway's public agent listener, whose one
    stream authenticates collectors in its own protocol (and which has no reflection).
    """
    options = {
        "grpc.max_receive_message_length": MAX_ADMIN_MESSAGE_BYTES,
        "grpc.so_reuseport": 0,
        "grpc.keepalive_time_ms": 30_000,
        "grpc.http2.min_ping_interval_without_data_ms": 10_000,
    }
    options.update(extra_options)  # a caller's value replaces the default, never sits beside it
    interceptors: list[grpc.aio.ServerInterceptor] = [ErrorMappingInterceptor()]
    if auth is not None:
        interceptors.append(auth)  # inside error mapping: handlers' domain errors still map
    server = grpc.aio.server(interceptors=interceptors, options=list(options.items()))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if reflection_enabled:
        names = [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, server)
    return server, health_servicer


def bind(server: grpc.aio.Server, address: str, tls: TlsFiles | None, what: str) -> int:
    """Bind `address` ("host:port", port 0 for any free one); warn loudly when plain off-loopback."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if tls is not None:
        port = server.add_secure_port(address, tls.server_credentials())
    else:
        port = server.add_insecure_port(address)
        if not is_loopback(host):
            log.warning(
                "plaintext_listener_on_network",
                listener=what,
                address=address,
                advice="give a TLS certificate and key; plaintext is for local development only",
            )
    if port == 0:
        raise SystemExit(f"cannot listen on {address} for {what}: address in use or invalid")
    return port


async def set_serving(health_servicer: health.aio.HealthServicer, names: Iterable[str], serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ["", *names]:
        await health_servicer.set(name, status)


def start_metrics(address: str) -> int:
    """Serve Prometheus `/metrics` on "host:port" (port 0 picks one); return the port."""
    if not address:
        return 0
    host, _, port = address.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1")
    return int(server.server_port)


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit: every collector session is a socket.

    Returns the new soft limit. Distributions often default the soft limit to 1024, which
    would cap a gateway at about a thousand collectors for no reason.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def connect_host(address: str) -> str:
    """The host a client on this machine dials to reach a listener bound to `address`."""
    host = address.rsplit(":", 1)[0].strip("[]")
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class _Disposable(Protocol):
    async def dispose(self) -> None: ...


class ServiceServer(Protocol):
    """A built service (its app.py's `...Server`): started, stopped, its store disposed."""

    @property
    def store(self) -> _Disposable: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float | None) -> None: ...


S = TypeVar("S", bound=ServiceServer)


class ServeConfig(Protocol):
    """What `serve_until_signalled` reads from a service's config."""

    @property
    def database_url(self) -> str: ...

    @property
    def listen(self) -> str: ...

    @property
    def metrics_listen(self) -> str: ...

    @property
    def ready_file(self) -> str | None: ...

    @property
    def shutdown_grace(self) -> float: ...


async def serve_until_signalled(
    service: str,
    config: ServeConfig,
    build: Callable[[], Awaitable[tuple[S, int]]],
    *,
    startup_error: Callable[[str], Exception],
    ready_fields: Callable[[S], Mapping[str, str]] | None = None,
    log_fields: Mapping[str, object] | None = None,
) -> None:
    """Build, serve `/metrics`, start, write the ready file; on SIGTERM/SIGINT drain and return.

    `ready_fields` (from the built server) go into the ready file and the started line;
    `log_fields` only into the started line. A metrics listener that cannot bind disposes
    the store and raises `startup_error(message)`.
    """
    stop = install_shutdown_signals()
    server, port = await build()
    try:
        metrics_port = start_metrics(config.metrics_listen)
    except OSError as exc:
        await server.store.dispose()
        raise startup_error(f"cannot serve metrics on {config.metrics_listen}: {exc}") from exc
    await server.start()
    grpc_address = f"{connect_host(config.listen)}:{port}"
    metrics_address = f"{connect_host(config.metrics_listen)}:{metrics_port}" if metrics_port else ""
    extra = ready_fields(server) if ready_fields is not None else {}
    write_ready_file(config.ready_file, service=service, grpc=grpc_address, metrics=metrics_address, **extra)
    log.info(
        f"{service}_started",
        grpc=grpc_address,
        metrics=metrics_address,
        **extra,
        database=redact(config.database_url),
        **(log_fields or {}),
        version=VERSION,
    )
    await stop.wait()
    log.info(f"{service}_stopping", grace_seconds=config.shutdown_grace)
    await server.stop(config.shutdown_grace)
    log.info(f"{service}_stopped")
