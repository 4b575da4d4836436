"""The sealed session around any transport: one wrapper for TCP, WebSocket, gRPC and polling.

A raw transport (`services.collector.transport`) moves opaque frames; this wrapper runs
the Noise handshake over them (`establish()`), then seals every envelope the connection
sends and opens every record it receives, with the same `send`/`recv`/`close` calls, so
the connection loop does not know it is sealed. The wire format is in
`outpost.session.noise.wire`; the design and what it protects in ADR 0019.

Polling needs nothing special: its transport buffers `send()` and polls on `recv()`, so
the handshake spans polls (message 1 in the first poll, the reply in its response,
message 3 and the Hello record in the next).

Failures stay typed: a record that does not open raises `SealedSessionError` (a
`RemoteProtocolError`: the session fails with its reason and sends a sealed Disconnect);
a refusal before keys exist raises `HandshakeRefused`, a reply that does not check out
`SealedSessionError`, both from `establish()`, which the supervisor turns into a backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from outpost.access_key import AccessKey
from outpost.session.noise import RekeyPolicy
from outpost.session.noise.wire import InitiatorEnd
from services.collector.domain.server_url import Family
from services.collector.store.server_pin import ServerPinError, ServerPinStore
from services.collector.transport import Transport, TransportError

log = structlog.get_logger(__name__)

NOISE_TRANSPORT: dict[Family, str] = {"tcp": "tcp", "ws": "websocket", "http": "poll", "grpc": "grpc"}
"""The transport name each URL family binds into the Noise prologue."""


@dataclass
class SealedSessions:
    """What this collector seals with: its access key, its Noise static key, the server key it pins."""

    access_key: AccessKey
    static_private: bytes = field(repr=False)
    pins: ServerPinStore
    policy: RekeyPolicy = field(default_factory=RekeyPolicy)

    def server_key(self) -> bytes | None:
        """The key to pin this connection to (IK), or None for first contact (XX).

        The access key's wins; else `server.pin` (read per connection, so a deleted pin
        takes effect on the next one). A damaged pin raises `ServerPinError`: refusing is
        safer than silently trusting whoever answers.
        """
        if self.access_key.server_public_key is not None:
            return self.access_key.server_public_key
        return self.pins.load()

    def pin(self, key: bytes, fingerprint: str) -> None:
        """Record a server key learned on first contact (after the server's first record opened)."""
        try:
            self.pins.save(key)
        except OSError as exc:
            log.error("server_key_pin_failed", fingerprint=fingerprint, path=str(self.pins.path), error=str(exc))
            return
        log.warning(
            "server_key_pinned",
            fingerprint=fingerprint,
            path=str(self.pins.path),
            advice="first contact: compare this fingerprint with the server's (outpostctl server info); "
            "from now on this collector talks only to a gateway that proves this key",
        )


class SealedTransport:
    """A `Transport` whose frames are a sealed session; build it with `establish()`."""

    def __init__(
        self, inner: Transport, end: InitiatorEnd, sessions: SealedSessions, clock: Callable[[], float]
    ) -> None:
        self._inner = inner
        self._end = end
        self._sessions = sessions
        self._clock = clock
        self._pinned = end.pinned

    @classmethod
    async def establish(
        cls,
        inner: Transport,
        sessions: SealedSessions,
        family: Family,
        clock: Callable[[], float] = time.monotonic,
    ) -> SealedTransport:
        """Run the handshake over `inner`; HandshakeRefused, SealedSessionError, TransportError
        or ServerPinError when no sealed session results (the caller closes `inner`)."""
        end = InitiatorEnd(
            static_private=sessions.static_private,
            access_key_id=sessions.access_key.key_id,
            psk=sessions.access_key.secret,
            transport=NOISE_TRANSPORT[family],
            server_static=sessions.server_key(),
            policy=sessions.policy,
        )
        await inner.send(end.first_frame())
        reply = await inner.recv()
        if reply is None:
            raise TransportError("the gateway closed the connection during the sealed handshake")
        for frame in end.read_reply(reply, clock()):
            await inner.send(frame)
        log.debug("sealed_session_established", pattern=end.pattern.name, server_key=end.server_fingerprint)
        return cls(inner, end, sessions, clock)

    @property
    def handshake_hash(self) -> bytes:
        """The channel binding the Hello's proof signs."""
        return self._end.handshake_hash

    @property
    def pattern(self) -> str:
        return self._end.pattern.name

    async def send(self, payload: bytes) -> None:
        for record in self._end.seal(payload, self._clock()):
            await self._inner.send(record)

    async def recv(self) -> bytes | None:
        # Cancel-safe as the inner recv() is: a record is opened only once it arrived whole,
        # and fragments wait in the channel.
        while True:
            record = await self._inner.recv()
            if record is None:
                return None
            envelope = self._end.open(record)  # SealedSessionError when it does not authenticate
            if not self._pinned and (candidate := self._end.pin_candidate) is not None:
                self._pinned = True
                self._sessions.pin(candidate, self._end.server_fingerprint)
            if envelope is not None:
                return envelope

    async def close(self) -> None:
        await self._inner.close()


__all__ = ["NOISE_TRANSPORT", "SealedSessions", "SealedTransport", "ServerPinError"]
