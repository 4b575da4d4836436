"""The gateway's public gRPC listener bounds how many calls one connection may hold."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from outpost.agent.v1 import agent_pb2
from tests.process_harness import ControlPlane
from tests.security.test_poll_flood import stalled_initiator

CONNECT = "/outpost.agent.v1.AgentService/Connect"
MAX_STREAMS = 2


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'outpost.db'}"
    plane = ControlPlane(tmp_path / "server", url, gateway_args=["--grpc-max-concurrent-streams", str(MAX_STREAMS)])
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


async def _stalled_handshake(channel: grpc.aio.Channel, access_key_file: Path) -> tuple[float, float]:
    """Open a sealed session, send a Hello, never the proof: (when the Challenge came, when the stream ended)."""
    call = channel.stream_stream(CONNECT)()
    end = stalled_initiator(access_key_file, "grpc")
    await call.write(end.first_frame())
    for frame in end.read_reply(await call.read(), 0.0):
        await call.write(frame)
    hello = agent_pb2.CollectorMessage(
        sequence=1,
        hello=agent_pb2.Hello(
            protocol_version=1,
            instance_uid=str(uuid.uuid4()),
            name=f"stalled-{uuid.uuid4().hex[:8]}",
            public_key=bytes(32),
            username="svc",
            password_verifier="$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ),
    )
    for record in end.seal(hello.SerializeToString(), 0.0):
        await call.write(record)
    challenge = agent_pb2.ServerMessage.FromString(end.open(await call.read()) or b"")
    assert challenge.WhichOneof("body") == "challenge"
    challenged = time.monotonic()
    while (data := await call.read()) is not grpc.aio.EOF:
        message = agent_pb2.ServerMessage.FromString(end.open(data) or b"")
        if message.WhichOneof("body") == "disconnect":
            assert message.disconnect.reason == agent_pb2.DISCONNECT_REASON_HANDSHAKE_TIMEOUT
    return challenged, time.monotonic()


async def _three_streams_on_one_connection(address: str, access_key_file: Path) -> list[tuple[float, float]]:
    async with grpc.aio.insecure_channel(address) as channel:
        async with asyncio.timeout(60):
            return await asyncio.gather(*(_stalled_handshake(channel, access_key_file) for _ in range(MAX_STREAMS + 1)))


def test_one_connection_gets_no_more_concurrent_streams_than_the_bound(plane: ControlPlane) -> None:
    spans = sorted(asyncio.run(_three_streams_on_one_connection(plane.gateway_ready["grpc"], plane.access_key_file)))

    # The third stream waited for one of the first two to end before the gateway heard it.
    first_end = min(end for _, end in spans[:MAX_STREAMS])
    assert spans[MAX_STREAMS][0] >= first_end
