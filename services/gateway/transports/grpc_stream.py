"""The gRPC transport: `AgentService/Connect` as a raw-bytes bidirectional stream.

The method is registered with no (de)serializers, so envelopes reach the session loop as
bytes and a malformed one gets the same clear Disconnect on every transport, instead of
gRPC's generic deserialization error. Message size is bounded by the server's
`grpc.max_receive_message_length`.

grpcio cannot read a PROXY protocol header, so behind a layer-4 balancer the session's
address is the balancer's unless the Service keeps source addresses
(`externalTrafficPolicy: Local`); behind a layer-7 gRPC proxy in `--trusted-proxies`,
its `x-forwarded-for` / `forwarded` metadata names the collector (ADR 0026).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from services.gateway.sessions.agent_session import run_session
from services.gateway.sessions.context import GatewayContext
from services.gateway.transports.client_address import TrustedProxies, forwarded_client

SERVICE_NAME = "outpost.agent.v1.AgentService"
DEFAULT_MAX_CONCURRENT_STREAMS = 100
KEEPALIVE_TIME_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000
MIN_CLIENT_PING_INTERVAL_MS = 10_000
MAX_CONNECTION_IDLE_MS = 5 * 60_000


def listener_options(*, max_concurrent_streams: int, handshake_timeout: float) -> list[tuple[str, int]]:
    """Bounds of the public gRPC listener, beyond what `build_grpc_server` sets.

    - A connection may multiplex at most `max_concurrent_streams` calls: a collector needs
      one, an admin client a few; more from one connection would let it take every
      handshake slot alone.
    - Keepalive is enforced: a client pinging more often than every 10 s without data,
      or at all without a call, collects strikes and is sent GOAWAY; the server's own
      keepalive pings (every 30 s, 10 s to answer) go on while a stream is quiet, so a
      vanished collector's connection is found and closed.
    - The TLS and HTTP/2 handshake must finish within the agent handshake timeout, and a
      connection with no call for five minutes is closed (a collector always has one).
      There is no maximum connection age: it would cut long-lived collector streams; a
      drain moves collectors between gateways instead.
    """
    return [
        ("grpc.max_concurrent_streams", max_concurrent_streams),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.server_handshake_timeout_ms", max(1000, int(handshake_timeout * 1000))),
        ("grpc.max_connection_idle_ms", MAX_CONNECTION_IDLE_MS),
    ]


class GrpcAgentStream:
    transport = "grpc"

    def __init__(self, context: grpc.aio.ServicerContext, trusted: TrustedProxies) -> None:
        self._context = context
        self._write_abandoned = False
        metadata = context.invocation_metadata() or ()
        self.remote_address = forwarded_client(
            _peer(context.peer()),
            trusted,
            forwarded=[str(v) for k, v in metadata if k == "forwarded"],
            x_forwarded_for=[str(v) for k, v in metadata if k == "x-forwarded-for"],
        )

    async def recv(self) -> bytes | None:
        data = await self._context.read()
        if data is grpc.aio.EOF:
            return None
        return bytes(data)

    async def send(self, data: bytes) -> None:
        """Write one envelope; a stream that can no longer be written is a lost connection.

        A write given up on (the session's send timeout cancels it) stays pending inside
        gRPC core, and any later write on that call fails with TOO_MANY_OPERATIONS: so after
        one, every send raises ConnectionError, as does any failure gRPC reports, and the
        session ends as lost instead of crashing (seen under load in the reconnect storm).
        """
        if self._write_abandoned:
            raise ConnectionError("an earlier write on this stream never finished")
        try:
            await self._context.write(data)
        except asyncio.CancelledError:
            self._write_abandoned = True
            raise
        except Exception as exc:  # the transport's edge: whatever gRPC raises means the stream is gone
            self._write_abandoned = True
            raise ConnectionError(f"the stream cannot be written: {type(exc).__name__}: {exc}") from exc

    async def close(self, reason: str) -> None:
        """Returning from the handler ends the stream with OK after the Disconnect."""


def _peer(peer: str) -> tuple[str, int] | None:
    """ "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000" -> ("127.0.0.1", 5000) / ("::1", 5000); else None."""
    scheme, _, address = peer.partition(":")
    if scheme not in ("ipv4", "ipv6") or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def agent_service_handler(ctx: GatewayContext) -> grpc.GenericRpcHandler:
    async def connect(_request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await run_session(GrpcAgentStream(context, ctx.trusted_proxies), ctx)

    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {"Connect": grpc.stream_stream_rpc_method_handler(connect)},
    )
