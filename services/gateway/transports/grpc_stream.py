"""The gRPC transport: `AgentService/Connect` as a raw-bytes bidirectional stream.

The method is registered with no (de)serializers, so envelopes reach the session loop as
bytes and a malformed one gets the same clear Disconnect on every transport, instead of
gRPC's generic deserialization error. Message size is bounded by the server's
`grpc.max_receive_message_length`.
"""

from __future__ import annotations

from typing import Any

import grpc

from services.gateway.agent_session import run_session
from services.gateway.gateway_context import GatewayContext

SERVICE_NAME = "outpost.agent.v1.AgentService"


class GrpcAgentStream:
    transport = "grpc"

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context
        self.remote_address = _peer_address(context.peer())

    async def recv(self) -> bytes | None:
        data = await self._context.read()
        if data is grpc.aio.EOF:
            return None
        return bytes(data)

    async def send(self, data: bytes) -> None:
        await self._context.write(data)

    async def close(self, reason: str) -> None:
        """Returning from the handler ends the stream with OK after the Disconnect."""


def _peer_address(peer: str) -> str:
    """ "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000" -> "127.0.0.1:5000" / "[::1]:5000"."""
    return peer.split(":", 1)[1] if ":" in peer else peer


def agent_service_handler(ctx: GatewayContext) -> grpc.GenericRpcHandler:
    async def connect(_request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await run_session(GrpcAgentStream(context), ctx)

    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {"Connect": grpc.stream_stream_rpc_method_handler(connect)},
    )
