"""The collector's sealed end for in-memory gateway tests: keys for the context, frames for the stream.

`seal_context(ctx)` gives a `GatewayContext` a server key and one access key, as the
registry's watch would; `SealedPeer` is the collector's `InitiatorEnd` with the
bookkeeping a test needs (turn server frames into envelopes, envelopes into frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from outpost.agent.v1 import agent_pb2
from outpost.session.noise.wire import REPLY_REFUSAL, InitiatorEnd
from services.gateway.peers.registry_client import AccessKeyChange, ServerKeyPair
from services.gateway.sessions.context import GatewayContext
from tests.unit.session.noise_pair import ACCESS_KEY_ID, World


def seal_context(ctx: GatewayContext, world: World, zone: str | None = None) -> GatewayContext:
    ctx.server_keys.load([ServerKeyPair(world.server.private, world.server.public, current=True)])
    ctx.access_keys.apply(
        AccessKeyChange(
            revision=1, key_id=ACCESS_KEY_ID, name="lab", zone=zone, psk=world.psk, expires_at=None, revoked=False
        )
    )
    return ctx


@dataclass
class SealedPeer:
    """One collector connection's sealed end (pinned: IK; else first contact, XX)."""

    world: World
    transport: str = "tcp"
    pinned: bool = True
    end: InitiatorEnd = field(init=False)

    def __post_init__(self) -> None:
        self.end = InitiatorEnd(
            static_private=self.world.collector.private,
            access_key_id=ACCESS_KEY_ID,
            psk=self.world.psk,
            transport=self.transport,
            server_static=self.world.server.public if self.pinned else None,
        )

    def first_frame(self) -> bytes:
        return self.end.first_frame()

    def receive(self, frame: bytes, now: float = 0.0) -> tuple[list[bytes], list[agent_pb2.ServerMessage]]:
        """(frames to send back, envelopes heard) for one frame from the gateway.

        A typed refusal is heard as the Disconnect it carries, as the collector logs it.
        """
        if not self.end.complete:
            if frame[:1] == bytes([REPLY_REFUSAL]):
                return [], [agent_pb2.ServerMessage(disconnect=agent_pb2.Disconnect.FromString(frame[1:]))]
            return self.end.read_reply(frame, now), []
        envelope = self.end.open(frame)
        return [], [] if envelope is None else [agent_pb2.ServerMessage.FromString(envelope)]

    def seal(self, message: agent_pb2.CollectorMessage, now: float = 0.0) -> list[bytes]:
        return self.end.seal(message.SerializeToString(), now)
