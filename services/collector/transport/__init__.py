"""Client transports: carry serialized envelopes to a gateway and back, nothing more.

Every transport has the same three calls, so the connection loop is one piece of code:

    await transport.send(payload)   one serialized CollectorMessage
    await transport.recv()          one serialized ServerMessage, or None once closed
    await transport.close()         idempotent; bounded in time

`recv()` must be safe to cancel (the connection loop waits on it under a deadline): a
cancelled `recv()` loses no data. A broken connection raises `TransportError`; a frame the
protocol forbids (oversized, text on a WebSocket) raises `RemoteProtocolError` so the
session can fail with the matching reason.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from services.collector.domain.server_url import ServerUrl

if TYPE_CHECKING:
    from services.collector.transport.proxy import Proxy

MAX_MESSAGE_BYTES = 1024 * 1024
CLOSE_TIMEOUT = 2.0


class TransportError(Exception):
    """The connection to the gateway failed or broke; the message says how."""


class Transport(Protocol):
    async def send(self, payload: bytes) -> None: ...

    async def recv(self) -> bytes | None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ClientTls:
    """Trust roots for TLS URLs: the `--ca-file` bundle, or the system's when None."""

    ca_pem: bytes | None = None
    ca_file: str | None = None

    @classmethod
    def from_ca_file(cls, ca_file: str | None) -> ClientTls:
        """Read and check the CA bundle once at start; raise ValueError/OSError if unusable."""
        if not ca_file:
            return cls()
        with open(ca_file, "rb") as file:
            tls = cls(ca_pem=file.read(), ca_file=ca_file)
        try:
            tls.ssl_context  # noqa: B018 - load it now, so a bad bundle fails at start
        except (ssl.SSLError, UnicodeDecodeError) as exc:
            raise ValueError(f"{ca_file} is not a PEM CA bundle: {exc}") from exc
        return tls

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """For the WebSocket, TCP and HTTP polling transports (gRPC takes `ca_pem` itself)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode() if self.ca_pem else None)


async def open_transport(url: ServerUrl, tls: ClientTls, sealed: bool = False, proxy: Proxy | None = None) -> Transport:
    """Connect to `url` with the transport its scheme names; raise TransportError on failure.

    gRPC and HTTP polling connect lazily: their failures surface on the first send/recv.
    `sealed`: the frames will be a sealed session's (`transport.sealed` wraps the result):
    polling carries them in `records`, TCP bounds them at Noise's record size.
    `proxy`: tunnel through this HTTP proxy (`transport.proxy`; `ProxySettings.route`).
    """
    # Imported here so a collector that only speaks TCP never loads grpc or aiohttp.
    if url.family == "grpc":
        from services.collector.transport.grpc_stream import GrpcTransport

        return await GrpcTransport.open(url, tls, proxy)
    if url.family == "ws":
        from services.collector.transport.websocket import WebSocketTransport

        return await WebSocketTransport.open(url, tls, proxy)
    if url.family == "http":
        from services.collector.transport.http_poll import HttpPollTransport

        return await HttpPollTransport.open(url, tls, sealed, proxy)
    from services.collector.transport.tcp import TcpTransport

    return await TcpTransport.open(url, tls, sealed, proxy)
