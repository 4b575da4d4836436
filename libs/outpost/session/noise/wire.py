"""The sealed session as frames on a transport: typed handshake replies and the collector's end.

What every transport carries (TCP: one length-prefixed frame each; WebSocket: one binary
message; gRPC: one bytes message; HTTP polling: one element of `records`):

    collector -> gateway   pattern byte (1 IK, 2 XX) || Noise message 1
    gateway -> collector   0x01 || Noise message 2                       (REPLY_HANDSHAKE)
                        or 0x00 || serialized outpost.agent.v1.Disconnect  (REPLY_REFUSAL)
    collector -> gateway   Noise message 3, bare                          (XX only)
    both directions        sealed records (`SealedChannel`); the collector's first is its Hello

A refusal comes before any keys exist, so nothing authenticates it: a collector treats it
as advice (logs it, follows the retry and backoff rules) and never as more. What it can
say: the access key is unknown/revoked/expired (ACCESS_KEY_REFUSED), first contact is
off, the gateway drains, the address is rate limited, the first frame was malformed.

A gateway tells a sealed first frame from a legacy cleartext envelope by its first byte:
1 or 2 is a pattern byte; a `CollectorMessage` starts with a protobuf tag (field 1 and
up, so at least 0x08).

`InitiatorEnd` is the collector's end, I/O-free like the handshake under it: the
transport wrapper (`services.collector.transport.sealed`) sends what it returns and feeds
it what arrives.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import LocalProtocolError
from outpost.session.handshake import fingerprint
from outpost.session.noise.channel import RekeyPolicy, SealedChannel
from outpost.session.noise.errors import CloseCause, SealedSessionError
from outpost.session.noise.handshake import Initiator, Pattern

REPLY_REFUSAL = 0x00
REPLY_HANDSHAKE = 0x01
SEALED_FIRST_BYTES = frozenset(int(p) for p in Pattern)
MAX_REFUSAL_BYTES = 4096
"""A refusal is a short Disconnect; a longer one is malformed, not read."""


def is_sealed_first_frame(frame: bytes) -> bool:
    """Whether a connection's first frame opens a sealed session (else: a legacy envelope)."""
    return bool(frame) and frame[0] in SEALED_FIRST_BYTES


def handshake_reply(message: bytes) -> bytes:
    return bytes([REPLY_HANDSHAKE]) + message


def refusal_reply(disconnect: agent_pb2.Disconnect) -> bytes:
    return bytes([REPLY_REFUSAL]) + disconnect.SerializeToString()


class HandshakeRefused(Exception):
    """The gateway refused the handshake before any keys existed (advice, unauthenticated)."""

    def __init__(self, disconnect: agent_pb2.Disconnect) -> None:
        reasons = agent_pb2.DisconnectReason
        name = reasons.Name(disconnect.reason) if disconnect.reason in reasons.values() else str(disconnect.reason)
        super().__init__(f"{name}: {disconnect.message}")
        self.disconnect = disconnect


class InitiatorEnd:
    """The collector's end of one sealed session: handshake frames, then records.

    `server_static` is the pinned server key (IK) or None (first contact, XX). After the
    handshake, `seal()` turns an envelope into records and `open()` a record into an
    envelope (None while fragments are pending). `pin_candidate` is the server key learned
    by XX once the server proved the session's keys with its first record: only then may
    the caller pin it (ADR 0019).
    """

    def __init__(
        self,
        *,
        static_private: bytes,
        access_key_id: str,
        psk: bytes,
        transport: str,
        server_static: bytes | None,
        policy: RekeyPolicy | None = None,
    ) -> None:
        self._handshake = Initiator(
            static_private=static_private,
            access_key_id=access_key_id,
            psk=psk,
            transport=transport,
            server_static=server_static,
        )
        self._policy = policy or RekeyPolicy()
        self.channel: SealedChannel | None = None

    @property
    def pattern(self) -> Pattern:
        pattern = self._handshake.pattern
        assert pattern is not None
        return pattern

    @property
    def pinned(self) -> bool:
        return self.pattern is Pattern.IK

    def first_frame(self) -> bytes:
        """The frame that opens the session: pattern byte and Noise message 1."""
        return self._handshake.write_message()

    def read_reply(self, frame: bytes, now: float) -> list[bytes]:
        """Feed the gateway's handshake reply; the frames to send next (XX: message 3).

        Raises `HandshakeRefused` for a typed refusal and `SealedSessionError` when the
        reply does not check out (for IK: the server could not prove the pinned key).
        """
        if self.channel is not None:
            raise LocalProtocolError("the handshake is complete; feed records to open()")
        if not frame:
            raise SealedSessionError(CloseCause.MALFORMED_HANDSHAKE, "an empty handshake reply")
        if frame[0] == REPLY_REFUSAL:
            raise HandshakeRefused(_decode_refusal(frame[1:]))
        if frame[0] != REPLY_HANDSHAKE:
            raise SealedSessionError(
                CloseCause.MALFORMED_HANDSHAKE, f"unknown handshake reply type {frame[0]:#04x} (0x00 or 0x01)"
            )
        self._handshake.read_message(frame[1:])
        out = [] if self._handshake.complete else [self._handshake.write_message()]
        self.channel = self._handshake.channel(now, policy=self._policy)
        return out

    @property
    def complete(self) -> bool:
        return self.channel is not None

    @property
    def handshake_hash(self) -> bytes:
        return self._channel().handshake_hash

    @property
    def server_key(self) -> bytes:
        """The server's static key: the pinned one (IK) or the one message 2 carried (XX)."""
        return self._channel().remote_static

    @property
    def server_fingerprint(self) -> str:
        return fingerprint(self.server_key)

    @property
    def pin_candidate(self) -> bytes | None:
        """The server key to pin now: XX only, and only once the server's first record opened."""
        channel = self._channel()
        if self.pinned or not channel.peer_confirmed:
            return None
        return channel.remote_static

    def seal(self, envelope: bytes, now: float) -> list[bytes]:
        return self._channel().seal(envelope, now)

    def open(self, record: bytes) -> bytes | None:
        return self._channel().open(record)

    def _channel(self) -> SealedChannel:
        if self.channel is None:
            raise LocalProtocolError("the sealed handshake is not complete")
        return self.channel


def _decode_refusal(data: bytes) -> agent_pb2.Disconnect:
    if len(data) > MAX_REFUSAL_BYTES:
        raise SealedSessionError(CloseCause.MALFORMED_HANDSHAKE, f"a handshake refusal of {len(data)} bytes")
    try:
        return agent_pb2.Disconnect.FromString(data)
    except DecodeError as exc:
        raise SealedSessionError(CloseCause.MALFORMED_HANDSHAKE, "a handshake refusal that is not a Disconnect") from exc
