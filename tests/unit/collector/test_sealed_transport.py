"""The collector's sealed transport against the gateway's `GatewaySeal`, over an in-memory frame pipe.

Pins only after the gateway's first record (not at message 2), and a typed refusal or a
gateway that cannot prove the pinned key ends the attempt the way the supervisor expects.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from outpost.access_key import AccessKey, AccessKeyGrant
from outpost.agent.v1 import agent_pb2
from outpost.session.noise import SealedSessionError
from outpost.session.noise.wire import HandshakeRefused
from services.collector.store.server_pin import ServerPinStore
from services.collector.transport.sealed import SealedSessions, SealedTransport
from services.gateway.sessions.sealed import GatewaySeal, SealingPolicy
from tests.unit.session.noise_pair import KeyPair, World

R = agent_pb2.DisconnectReason


class Pipe:
    """A collector `Transport` whose far end is a `GatewaySeal` run inline."""

    def __init__(self, seal: GatewaySeal) -> None:
        self.seal = seal
        self.to_collector: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.envelopes: list[bytes] = []

    async def send(self, payload: bytes) -> None:
        try:
            received = self.seal.receive(payload, 0.0)
        except SealedSessionError as exc:
            disconnect = agent_pb2.Disconnect(reason=exc.reason, message=exc.message)
            for frame in self.seal.outgoing(agent_pb2.ServerMessage(disconnect=disconnect).SerializeToString(), 0.0):
                self.to_collector.put_nowait(frame)
            return
        for reply in received.replies:
            self.to_collector.put_nowait(reply)
        if received.envelope is not None:
            self.envelopes.append(received.envelope)

    def answer(self, envelope: bytes) -> None:
        for frame in self.seal.outgoing(envelope, 0.0):
            self.to_collector.put_nowait(frame)

    async def recv(self) -> bytes | None:
        return await self.to_collector.get()

    async def close(self) -> None:
        self.to_collector.put_nowait(None)


def seal_for(world: World, *, server: KeyPair | None = None, known: bool = True) -> GatewaySeal:
    grants = {"ak-lab-1": AccessKeyGrant("ak-lab-1", "lab", world.psk)} if known else {}
    return GatewaySeal(
        static_private=(server or world.server).private, transport="tcp", grants=grants.get, policy=SealingPolicy()
    )


def sessions(world: World, tmp_path: Path, *, pinned: bool) -> SealedSessions:
    key = AccessKey("ak-lab-1", world.psk, world.server.public if pinned else None)
    return SealedSessions(key, world.collector.private, ServerPinStore(tmp_path))


async def test_first_contact_pins_the_server_key_once_its_first_record_opened(tmp_path: Path) -> None:
    world = World()
    pipe = Pipe(seal_for(world))
    transport = await SealedTransport.establish(pipe, sessions(world, tmp_path, pinned=False), "tcp")
    assert transport.pattern == "XX"
    assert not (tmp_path / "server.pin").exists()  # message 2 proves nothing yet
    await transport.send(b"hello")
    assert pipe.envelopes == [b"hello"]
    pipe.answer(b"challenge")
    with capture_logs() as logs:
        assert await transport.recv() == b"challenge"
    assert ServerPinStore(tmp_path).load() == world.server.public
    assert [e["event"] for e in logs] == ["server_key_pinned"]
    # The next connection is pinned: IK.
    again = await SealedTransport.establish(Pipe(seal_for(world)), sessions(world, tmp_path, pinned=False), "tcp")
    assert again.pattern == "IK"


async def test_an_unknown_access_key_is_a_typed_refusal(tmp_path: Path) -> None:
    world = World()
    with pytest.raises(HandshakeRefused) as refused:
        await SealedTransport.establish(
            Pipe(seal_for(world, known=False)), sessions(world, tmp_path, pinned=True), "tcp"
        )
    assert refused.value.disconnect.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED


async def test_a_gateway_with_another_key_cannot_read_a_pinned_collectors_first_message(tmp_path: Path) -> None:
    world = World()
    impostor = seal_for(world, server=KeyPair.generate())
    with pytest.raises(HandshakeRefused) as refused:
        await SealedTransport.establish(Pipe(impostor), sessions(world, tmp_path, pinned=True), "tcp")
    assert refused.value.disconnect.reason == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
    assert not (tmp_path / "server.pin").exists()
