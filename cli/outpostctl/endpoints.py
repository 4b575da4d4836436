"""Where each control-plane service is, the token to call it with, and one channel to it.

Two ways to point outpostctl at a control plane. With `--server ADDR` every service is
reached at that one address: in Kubernetes one ingress routes gRPC by service path
(`/outpost.registry.v1.RegistryService/...`). Otherwise each service has its own address.
`--ca-file` switches every channel to TLS, verifying the server against that CA bundle.

Each setting is taken from, in order: its flag (or environment variable), the current
context of the user's config file (`outpost.client_config`, written by `make run`), then
the ports `make run` listens on. The admin token comes from `--token-file`, then
`OUTPOST_TOKEN`, then the context; every call carries it as `authorization: Bearer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import grpc
import typer
from google.protobuf.timestamp_pb2 import Timestamp

from outpost import client_config
from outpost.auth.bearer import SyncBearer
from outpostctl.errors import CommandError, error_from_rpc

DEFAULT_REGISTRY = "127.0.0.1:50051"
DEFAULT_GATEWAY = "127.0.0.1:50062"
"""The gateway's internal admin listener (sessions, inventory); collectors use 50061."""
DEFAULT_SCHEDULER = "127.0.0.1:50071"
DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Endpoints:
    """The resolved addresses of the services, the TLS trust root and the call deadline."""

    registry: str = DEFAULT_REGISTRY
    gateway: str = DEFAULT_GATEWAY
    scheduler: str = DEFAULT_SCHEDULER
    ca_file: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    token: str | None = field(default=None, repr=False)
    auth_origin: str = "none"
    """Where the token came from, for the message when a service refuses it."""

    @classmethod
    def resolve(
        cls,
        *,
        server: str | None,
        registry: str | None,
        gateway: str | None,
        scheduler: str | None,
        ca_file: Path | None,
        timeout: float,
        token: str | None = None,
        auth_origin: str = "none",
        context: client_config.Context | None = None,
    ) -> Endpoints:
        """`server`, when given, wins over the per-service addresses; then the context."""
        ctx = context or client_config.Context()
        if server:
            registry = gateway = scheduler = server
        if ca_file is None and ctx.ca_file:
            ca_file = Path(ctx.ca_file)
        return cls(
            registry or ctx.registry or DEFAULT_REGISTRY,
            gateway or ctx.gateway or DEFAULT_GATEWAY,
            scheduler or ctx.scheduler or DEFAULT_SCHEDULER,
            ca_file,
            timeout,
            token,
            auth_origin,
        )


def endpoints_of(ctx: typer.Context) -> Endpoints:
    """The endpoints the root command resolved from its options and the environment."""
    endpoints = ctx.obj
    if not isinstance(endpoints, Endpoints):
        raise RuntimeError("outpostctl's root callback did not run")
    return endpoints


class Connection:
    """A channel to one service; `call` applies the deadline and maps failures.

    Use as a context manager so the channel is closed when the command is done.
    """

    service = "service"

    def __init__(self, address: str, endpoints: Endpoints) -> None:
        self.address = address
        self.timeout = endpoints.timeout
        self.tls = endpoints.ca_file is not None
        self.auth_origin = endpoints.auth_origin
        self._raw_channel = _open_channel(address, endpoints.ca_file)
        self.channel = self._raw_channel
        if endpoints.token:
            self.channel = grpc.intercept_channel(self._raw_channel, SyncBearer(endpoints.token))

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        """Invoke a unary stub method with the deadline; raise `CommandError` on failure."""
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(
                exc,
                service=self.service,
                address=self.address,
                timeout=self.timeout,
                tls=self.tls,
                auth_origin=self.auth_origin,
            ) from exc

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def time_field(message: Any, field: str) -> datetime | None:
    """A Timestamp field as a UTC datetime; unset or the zero epoch both mean "never".

    For the clients, which turn replies into records before anything else sees them.
    """
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def _open_channel(address: str, ca_file: Path | None) -> grpc.Channel:
    if ca_file is None:
        return grpc.insecure_channel(address)
    try:
        root = ca_file.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read the CA file {ca_file}: {exc.strerror}") from exc
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=root))
