"""The gRPC transport's send: a write given up on leaves the stream lost, never crashed.

gRPC core keeps a cancelled write pending, and a later write on the same call fails with
TOO_MANY_OPERATIONS, an error the session loop does not treat as a lost connection.
"""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.transports.client_address import TrustedProxies
from services.gateway.transports.grpc_stream import GrpcAgentStream


class StuckContext:
    """A servicer context whose first write never completes and whose later writes fail as
    gRPC core's do after that."""

    def __init__(self) -> None:
        self.writes = 0

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    async def write(self, data: bytes) -> None:
        self.writes += 1
        if self.writes == 1:
            await asyncio.Event().wait()
        raise RuntimeError("TOO_MANY_OPERATIONS")


async def test_after_a_write_given_up_on_every_send_is_a_lost_connection() -> None:
    context = StuckContext()
    stream = GrpcAgentStream(context, TrustedProxies())  # type: ignore[arg-type]

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await stream.send(b"first")
    with pytest.raises(ConnectionError, match="never finished"):
        await stream.send(b"second")
    assert context.writes == 1  # gRPC was not asked again


async def test_a_failure_grpc_reports_on_write_is_a_lost_connection() -> None:
    context = StuckContext()
    context.writes = 1  # past the stuck one: this write fails at once
    stream = GrpcAgentStream(context, TrustedProxies())  # type: ignore[arg-type]

    with pytest.raises(ConnectionError, match="TOO_MANY_OPERATIONS"):
        await stream.send(b"envelope")
    with pytest.raises(ConnectionError, match="never finished"):
        await stream.send(b"again")
