"""A streaming transport (TCP, WebSocket, gRPC) with its frames sealed: `AgentStream` in, `AgentStream` out.

The session runner reads envelopes and writes envelopes as before; this wrapper runs the
gateway's `GatewaySeal` between them and the wire. Handshake replies are written by the
reader (`recv()`, or the pushing transport after `open()`) while the handshake runs; nothing else is written then, since
the core sends nothing before the Hello, which is the first record. `count_failure` is
the one place a refusal or a failed record becomes a log line and a metric, for the
polling transport too.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from outpost.session.errors import RemoteProtocolError
from outpost.session.noise import CloseCause, SealedSessionError
from services.gateway import metrics
from services.gateway.sessions.context import AgentStream, GatewayContext
from services.gateway.sessions.sealed import AccessRefused, ChannelBinding, GatewaySeal

log = structlog.get_logger(__name__)


def new_seal(ctx: GatewayContext, transport: str) -> GatewaySeal:
    """A connection's gate, with the server's static keys (current first) and the access-key cache."""
    current, *others = ctx.server_keys.private_keys()
    return GatewaySeal(
        static_private=current,
        other_static_privates=others,
        transport=transport,
        grants=ctx.access_keys.grant,
        policy=ctx.sealing,
    )


def count_failure(seal: GatewaySeal, error: RemoteProtocolError) -> None:
    """Log and count why a sealed session ends: a handshake refusal or a failed record."""
    if isinstance(error, AccessRefused):
        label = error.label
    elif isinstance(error, SealedSessionError):
        label = error.cause.value
    else:
        return
    access_key_id = seal.grant.key_id if seal.grant is not None else None
    if (
        isinstance(error, AccessRefused)
        or seal.in_handshake
        or (isinstance(error, SealedSessionError) and error.cause is CloseCause.HANDSHAKE_FAILED)
    ):
        metrics.HANDSHAKE_REFUSALS.labels(label).inc()
        log.warning("sealed_handshake_refused", cause=label, access_key_id=access_key_id, detail=error.message)
    else:
        metrics.SEALED_FAILURES.labels(label).inc()
        log.warning("sealed_record_failed", cause=label, access_key_id=access_key_id, detail=error.message)


class SealedAgentStream:
    """`inner`'s frames through `seal`; what the session runner sees is envelopes.

    A transport that hands frames out (`recv()`) is read through `recv()`; one that pushes
    them (TCP's protocol callbacks) steps each through `open()` and writes the replies itself.
    """

    __slots__ = ("_clock", "_inner", "_seal", "remote_address", "transport")

    def __init__(self, inner: AgentStream, seal: GatewaySeal, clock: Callable[[], float]) -> None:
        self._inner = inner
        self._seal = seal
        self._clock = clock
        self.transport = inner.transport
        self.remote_address = inner.remote_address

    @property
    def binding(self) -> ChannelBinding | None:
        return self._seal.binding

    def open(self, frame: bytes) -> tuple[list[bytes], bytes | None]:
        """One frame through the seal: the handshake replies to write, and the envelope it completed.

        Raises RemoteProtocolError (counted and logged here) for a frame the seal refuses.
        """
        try:
            received = self._seal.receive(frame, self._clock())
        except RemoteProtocolError as exc:
            count_failure(self._seal, exc)
            raise
        return received.replies, received.envelope

    def ended(self) -> None:
        """The connection ended: raises (counted) if it ended inside an envelope."""
        channel = self._seal.channel
        if channel is not None and channel.incomplete_bytes:
            error = SealedSessionError(
                CloseCause.RECORD_TRUNCATED,
                f"the connection ended inside an envelope ({channel.incomplete_bytes} bytes of it arrived)",
            )
            count_failure(self._seal, error)
            raise error

    async def recv(self) -> bytes | None:
        while True:
            frame = await self._inner.recv()
            if frame is None:
                self.ended()
                return None
            replies, envelope = self.open(frame)
            for reply in replies:
                await self._inner.send(reply)
            if envelope is not None:
                return envelope

    async def send(self, data: bytes) -> None:
        for frame in self._seal.outgoing(data, self._clock()):
            await self._inner.send(frame)

    async def close(self, reason: str) -> None:
        await self._inner.close(reason)
