"""The gateway's end of a sealed session (ADR 0019), I/O-free: frames in, frames and envelopes out.

Every transport feeds a connection's frames to one `GatewaySeal` and sends what it
returns; streaming transports through `transports/sealed.py`, HTTP polling per request
(`transports/http_poll.py`). It is the gate in front of the session core:

- the first frame must open a sealed session (pattern byte 1 or 2). A legacy cleartext
  envelope is refused with ACCESS_KEY_REFUSED, in cleartext so an old collector can read
  why: sealing is required on every transport (an unsealed session over TLS is not
  offered this round; docs/security.md);
- the Noise responder picks the PSK from the access-key id in message 1 through `grants`
  (the gateway's in-memory access-key cache): unknown, revoked or expired -> refused
  before anything else happens. Refusals before keys exist are typed replies
  (`0x00 || Disconnect`, `outpost.session.noise.wire`);
- the first envelope (a record, so the peer has proven the PSK: key confirmation) is
  the Hello. A zone-bound access key admits only a Hello in its zone. Only then does the
  core see anything, so nothing is stored and the registry hears nothing of a
  connection that never confirmed its keys;
- afterwards every frame is a record of the `SealedChannel`; one that does not open
  raises `SealedSessionError` and the session closes with its reason (the channel can
  still seal the Disconnect).

`binding` gives the registry what the handshake proved: the access-key id and the
handshake hash the collector's Ed25519 proof signs (channel binding). During a server
key rotation the responder also reads IK handshakes made for the announced or the
replaced key (`other_static_privates`); `server_public_key` says which one this session
proved, so the session can announce a newer one to its collector (ADR 0024).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.message import DecodeError

from outpost.access_key import AccessKeyGrant
from outpost.agent.v1 import agent_pb2
from outpost.session.errors import LocalProtocolError, RemoteProtocolError
from outpost.session.noise import RekeyPolicy, Responder, SealedChannel
from outpost.session.noise.channel import DEFAULT_MAX_ENVELOPE_BYTES
from outpost.session.noise.wire import handshake_reply, is_sealed_first_frame, refusal_reply

R = agent_pb2.DisconnectReason

GrantLookup = Callable[[str], AccessKeyGrant | None]
"""Access-key id -> its grant, or None (unknown, revoked, expired): `AccessKeyCache.grant`."""

NOISE_TRANSPORT = {"tcp": "tcp", "websocket": "websocket", "http_poll": "poll", "grpc": "grpc"}
"""The gateway's transport labels -> the names bound into the Noise prologue."""

UNSEALED_REFUSAL = (
    "this gateway requires sealed sessions: upgrade the collector and give it an access key "
    "(--access-key-file, from `outpostctl access-keys create`)"
)


class AccessRefused(RemoteProtocolError):
    """The gate refused the collector by policy (`label` for metrics: unsealed, zone_mismatch)."""

    def __init__(self, label: str, message: str) -> None:
        super().__init__(R.DISCONNECT_REASON_ACCESS_KEY_REFUSED, message)
        self.label = label


@dataclass(frozen=True)
class SealingPolicy:
    """The gateway's sealing settings (flags in app.py)."""

    allow_first_contact: bool = True
    """Accept XX (trust on first use) handshakes; off: only collectors with the key pinned (IK)."""
    rekey: RekeyPolicy = field(default_factory=RekeyPolicy)
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES
    """The largest envelope the fragments of one may add up to (`--max-frame-bytes`)."""


@dataclass(frozen=True)
class ChannelBinding:
    """What the sealed handshake proved, for the registry (AuthenticateCollectorRequest fields 8, 9)."""

    access_key_id: str
    handshake_hash: bytes


@dataclass(frozen=True)
class Received:
    """What one frame produced: frames to send back now, and an envelope for the core."""

    replies: list[bytes] = field(default_factory=list)
    envelope: bytes | None = None


class Phase(enum.Enum):
    FIRST_FRAME = "first_frame"
    HANDSHAKE = "handshake"  # XX: waiting for message 3
    OPEN = "open"
    UNSEALED_REFUSED = "unsealed_refused"


class GatewaySeal:
    def __init__(
        self,
        *,
        static_private: bytes,
        transport: str,
        grants: GrantLookup,
        policy: SealingPolicy,
        other_static_privates: Sequence[bytes] = (),
    ) -> None:
        self._grants = grants
        self._policy = policy
        self.grant: AccessKeyGrant | None = None
        self._responder: Responder | None = Responder(
            static_private=static_private,
            transport=NOISE_TRANSPORT.get(transport, transport),
            psk_for=self._psk_for,
            allow_first_contact=policy.allow_first_contact,
            other_static_privates=other_static_privates,
        )
        self._proved_static = static_private
        """The server static key this session proves (IK: the one message 1 was made for)."""
        self.phase = Phase.FIRST_FRAME
        self.channel: SealedChannel | None = None
        self._hello_seen = False

    @property
    def binding(self) -> ChannelBinding | None:
        """What the handshake proved, once the collector confirmed the keys (None before)."""
        if self.channel is None or self.grant is None or not self.channel.peer_confirmed:
            return None
        return ChannelBinding(self.grant.key_id, self.channel.handshake_hash)

    @property
    def server_public_key(self) -> bytes:
        """The server static key this session proved (or will prove): the one message 1 was made for."""
        return public_of(self._proved_static)

    @property
    def in_handshake(self) -> bool:
        """Whether a failure now is a handshake refusal (else a failed record of a confirmed session)."""
        return self.channel is None or not self.channel.peer_confirmed

    def _psk_for(self, key_id: str) -> bytes | None:
        self.grant = self._grants(key_id)
        return self.grant.psk if self.grant is not None else None

    def receive(self, frame: bytes, now: float) -> Received:
        """Feed one frame; RemoteProtocolError (often a SealedSessionError) closes the session."""
        if self.phase is Phase.OPEN:
            assert self.channel is not None
            envelope = self.channel.open(frame)
            if envelope is not None and not self._hello_seen:
                self._hello_seen = True
                self._check_zone(envelope)
            return Received(envelope=envelope)
        if self.phase is Phase.FIRST_FRAME:
            if not is_sealed_first_frame(frame):
                self.phase = Phase.UNSEALED_REFUSED
                raise AccessRefused("unsealed", UNSEALED_REFUSAL)
            assert self._responder is not None
            self._responder.read_message(frame)
            self._proved_static = self._responder.static_private
            reply = handshake_reply(self._responder.write_message())
            self.phase = Phase.HANDSHAKE
            self._finish(now)
            return Received(replies=[reply])
        if self.phase is Phase.HANDSHAKE:
            assert self._responder is not None
            self._responder.read_message(frame)
            self._finish(now)
            return Received()
        raise LocalProtocolError(f"a frame after the session was refused ({self.phase.value})")

    def _finish(self, now: float) -> None:
        if self._responder is not None and self._responder.complete:
            self.channel = self._responder.channel(
                now, policy=self._policy.rekey, max_envelope_bytes=self._policy.max_envelope_bytes
            )
            self._responder = None  # a finished handshake is needed no more: the session keeps its channel
            self.phase = Phase.OPEN

    def _check_zone(self, envelope: bytes) -> None:
        """A zone-bound access key admits only a Hello in its zone (before the core or registry sees it)."""
        grant = self.grant
        if grant is None or not grant.zone:
            return
        try:
            message = agent_pb2.CollectorMessage.FromString(envelope)
        except DecodeError:
            return  # the core refuses it with MALFORMED_FRAME
        if message.HasField("hello") and message.hello.zone != grant.zone:
            raise AccessRefused(
                "zone_mismatch",
                f"access key {grant.key_id!r} admits collectors in zone {grant.zone!r} only, "
                f"not {message.hello.zone!r}: use an access key for that zone",
            )

    def outgoing(self, envelope: bytes, now: float) -> list[bytes]:
        """The frames that carry one of the core's envelopes.

        Sealed once the channel exists (a failed channel still seals, so the Disconnect is
        authenticated); before that only a Disconnect can go, as a typed refusal; to a
        legacy collector, the cleartext Disconnect it can read.
        """
        if self.channel is not None:
            return self.channel.seal(envelope, now)
        if self.phase is Phase.UNSEALED_REFUSED:
            return [envelope]
        message = agent_pb2.ServerMessage.FromString(envelope)
        if not message.HasField("disconnect"):
            raise LocalProtocolError(f"{message.WhichOneof('body')} before the sealed session is open")
        return [refusal_reply(message.disconnect)]


def public_of(private_key: bytes) -> bytes:
    """The public half of a raw X25519 private key."""
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
