"""The two Noise handshakes of a sealed session, as I/O-free objects fed whole frames.

A collector that has the server's static key pinned runs
`Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s` (two messages); one that has not runs
`Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s` (three messages) and pins the key it learns once
the server has proven the access key (`SealedChannel.peer_confirmed`). The access key is
the PSK in both. ADR 0019 says why, and what each message does and does not protect.

Outpost's framing around Noise, all of it covered by the test vectors in
`tests/vectors/outpost_noise.json`:

- Prologue: `b"outpost-agent/<protocol version>/<transport>"`, e.g. `outpost-agent/1/tcp`,
  so a handshake cannot be moved to another protocol version or transport.
- The initiator's first frame is one pattern byte (1 = IK, 2 = XX) and then Noise message
  1. The pattern is also in the Noise protocol name hashed into the transcript, so an
  altered byte fails the handshake. Later frames are bare Noise messages.
- The payload of message 1 starts with the access-key id: one length byte (1..64) and
  that many printable ASCII bytes; the rest is the caller's payload. In IK it is
  encrypted to the server's static key; in XX anyone can read it (Noise encrypts it under
  a key made of public values only: integrity, no confidentiality), because the responder
  must pick the PSK before it can read message 3. Other payloads are the caller's bytes.
- Every handshake frame is at most `MAX_HANDSHAKE_FRAME_BYTES`; a larger one is refused
  before any Diffie-Hellman work.

Driving one: the initiator calls `write_message()`, the responder `read_message()` then
`write_message()`, and so on until `complete`; then `channel(now)` gives the transport
object. Any failure raises `SealedSessionError` and leaves the object unusable (a further
call is a `LocalProtocolError`); the caller closes the connection.

`noise_connection()` is the one place a `noiseprotocol` connection is built, for these
objects and for the tests that check it against the Noise test vectors.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from noise.connection import Keypair, NoiseConnection
from noise.exceptions import NoiseInvalidMessage, NoiseValueError

from outpost.session.errors import LocalProtocolError
from outpost.session.handshake import fingerprint
from outpost.session.noise.channel import DEFAULT_MAX_ENVELOPE_BYTES, RekeyPolicy, SealedChannel
from outpost.session.noise.errors import CloseCause, SealedSessionError
from outpost.version import PROTOCOL_VERSION


class Pattern(enum.IntEnum):
    """The first byte of the initiator's first frame."""

    IK = 1
    """Pinned: the collector knows the server's static key."""
    XX = 2
    """First contact: the collector learns the server's static key (trust on first use)."""


PROTOCOL_NAMES: dict[Pattern, bytes] = {
    Pattern.IK: b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s",
    Pattern.XX: b"Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s",
}
MESSAGES: dict[Pattern, int] = {Pattern.IK: 2, Pattern.XX: 3}
TRANSPORTS = frozenset({"tcp", "websocket", "poll", "grpc"})

KEY_BYTES = 32
TAG_BYTES = 16
MAX_KEY_ID_BYTES = 64
MAX_HANDSHAKE_PAYLOAD_BYTES = 4096
"""The caller's payload in any handshake message."""
MAX_HANDSHAKE_FRAME_BYTES = (
    1 + KEY_BYTES + (KEY_BYTES + TAG_BYTES) + 1 + MAX_KEY_ID_BYTES + MAX_HANDSHAKE_PAYLOAD_BYTES + TAG_BYTES
)
"""Pattern byte, e, encrypted s, key id, payload, tag: the largest handshake frame either side accepts."""

# The smallest valid Noise message per (pattern, message index): keys, tags, an empty payload
# (plus the key id's length byte and one byte of id in message 1).
_MIN_MESSAGE_BYTES: dict[tuple[Pattern, int], int] = {
    (Pattern.IK, 0): KEY_BYTES + (KEY_BYTES + TAG_BYTES) + 2 + TAG_BYTES,
    (Pattern.IK, 1): KEY_BYTES + TAG_BYTES,
    (Pattern.XX, 0): KEY_BYTES + 2 + TAG_BYTES,
    (Pattern.XX, 1): KEY_BYTES + (KEY_BYTES + TAG_BYTES) + TAG_BYTES,
    (Pattern.XX, 2): (KEY_BYTES + TAG_BYTES) + TAG_BYTES,
}

# What noiseprotocol raises when a handshake message does not check out: a failed AEAD tag,
# a public key of the wrong length, a low-order point (cryptography's ValueError).
_HANDSHAKE_FAILURES = (InvalidTag, NoiseInvalidMessage, NoiseValueError, ValueError)

PskLookup = Callable[[str], bytes | None]
"""Access-key id -> its 32-byte PSK, or None when no valid key has that id."""


def prologue(transport: str, protocol_version: int = PROTOCOL_VERSION) -> bytes:
    """The bytes both sides hash into the handshake first: protocol version and transport."""
    if transport not in TRANSPORTS:
        raise LocalProtocolError(f"unknown transport {transport!r}; one of {sorted(TRANSPORTS)}")
    return f"outpost-agent/{protocol_version}/{transport}".encode("ascii")


def noise_connection(
    protocol_name: bytes,
    *,
    initiator: bool,
    prologue: bytes,
    static_private: bytes,
    psk: bytes,
    remote_static: bytes | None = None,
    ephemeral_private: bytes | None = None,
) -> NoiseConnection:
    """A started `noiseprotocol` handshake with these keys.

    `ephemeral_private` is for test vectors only: a fixed ephemeral key in production would
    throw away forward secrecy (noiseprotocol warns; the warning is silenced here because
    the only callers that pass one are vectors).
    """
    connection = NoiseConnection.from_name(protocol_name)
    connection.set_prologue(prologue)
    connection.set_psks(psk=psk)
    connection.set_keypair_from_private_bytes(Keypair.STATIC, static_private)
    if remote_static is not None:
        connection.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote_static)
    if ephemeral_private is not None:
        connection.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral_private)
    if initiator:
        connection.set_as_initiator()
    else:
        connection.set_as_responder()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One of ephemeral keypairs is already set")
        connection.start_handshake()
    return connection


def encode_key_id(key_id: str) -> bytes:
    """The access-key id as message 1 carries it: a length byte and printable ASCII."""
    raw = key_id.encode("ascii", errors="replace")
    if not 1 <= len(raw) <= MAX_KEY_ID_BYTES or not all(0x21 <= b <= 0x7E for b in raw):
        raise LocalProtocolError(f"an access-key id is 1-{MAX_KEY_ID_BYTES} printable ASCII characters")
    return bytes([len(raw)]) + raw


def _decode_key_id(payload: bytes) -> tuple[str, bytes]:
    """(key id, the rest) from message 1's payload; MALFORMED_HANDSHAKE if it has none."""
    if not payload:
        raise SealedSessionError(CloseCause.MALFORMED_HANDSHAKE, "handshake message 1 carries no access-key id")
    length = payload[0]
    raw = payload[1 : 1 + length]
    if not 1 <= length <= MAX_KEY_ID_BYTES or len(raw) != length or not all(0x21 <= b <= 0x7E for b in raw):
        raise SealedSessionError(
            CloseCause.MALFORMED_HANDSHAKE,
            f"handshake message 1 carries a malformed access-key id (length byte {length})",
        )
    return raw.decode("ascii"), payload[1 + length :]


def _check_key(name: str, key: bytes | None) -> None:
    if key is not None and len(key) != KEY_BYTES:
        raise LocalProtocolError(f"{name} must be {KEY_BYTES} bytes, not {len(key)}")


class _Handshake:
    """Turn order, size bounds and failure handling shared by both ends."""

    pattern: Pattern | None
    initiator: bool

    def __init__(self, transport: str, ephemeral_private: bytes | None) -> None:
        self.transport = transport
        self.prologue = prologue(transport)
        self._ephemeral_private = ephemeral_private
        self._connection: NoiseConnection | None = None
        self._index = 0  # the next handshake message, 0-based
        self._failed = False
        self._remote_static: bytes | None = None

    @property
    def complete(self) -> bool:
        return self.pattern is not None and self._index == MESSAGES[self.pattern]

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key, once a handshake message has carried or proven it."""
        return self._remote_static

    def _writes(self, index: int) -> bool:
        """Whether this end writes handshake message `index` (the initiator writes the even ones)."""
        return (index % 2 == 0) == self.initiator

    def _guard(self, writing: bool) -> None:
        if self._failed:
            raise LocalProtocolError("this handshake failed; close the connection")
        if self.complete:
            raise LocalProtocolError("the handshake is complete; use channel()")
        if self.pattern is not None and self._writes(self._index) != writing:
            raise LocalProtocolError(f"handshake message {self._index + 1} is the peer's to write")

    def _check_size(self, frame: bytes, minimum: int) -> None:
        if len(frame) > MAX_HANDSHAKE_FRAME_BYTES or len(frame) < minimum:
            self._failed = True
            raise SealedSessionError(
                CloseCause.MALFORMED_HANDSHAKE,
                f"handshake message {self._index + 1} of {len(frame)} bytes "
                f"(expected {minimum}..{MAX_HANDSHAKE_FRAME_BYTES})",
            )

    def _write(self, payload: bytes) -> bytes:
        assert self._connection is not None
        if len(payload) > MAX_HANDSHAKE_PAYLOAD_BYTES + 1 + MAX_KEY_ID_BYTES:
            raise LocalProtocolError(f"a handshake payload is at most {MAX_HANDSHAKE_PAYLOAD_BYTES} bytes")
        message = bytes(self._connection.write_message(payload))
        self._index += 1
        return message

    def _read(self, message: bytes, failure: str) -> bytes:
        assert self._connection is not None and self.pattern is not None
        self._check_size(message, _MIN_MESSAGE_BYTES[(self.pattern, self._index)])
        state = self._connection.noise_protocol.handshake_state  # dropped by noiseprotocol after the last message
        try:
            payload = bytes(self._connection.read_message(message))
        except _HANDSHAKE_FAILURES as exc:
            self._failed = True
            raise SealedSessionError(CloseCause.HANDSHAKE_FAILED, failure) from exc
        if self._remote_static is None and getattr(state.rs, "public_bytes", None) is not None:
            self._remote_static = bytes(state.rs.public_bytes)
        self._index += 1
        return payload

    def channel(
        self,
        now: float,
        *,
        policy: RekeyPolicy | None = None,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    ) -> SealedChannel:
        """The transport object for the completed handshake (call once)."""
        if not self.complete or self._connection is None or self.pattern is None:
            raise LocalProtocolError("the handshake is not complete")
        assert self._remote_static is not None
        connection, self._connection = self._connection, None
        # Who has key confirmation at the end of the handshake (ADR 0019): the IK initiator
        # (message 2 needs the server's static key, its fresh ephemeral and the PSK) and the
        # XX responder (message 3 needs the collector's static key, the server's fresh
        # ephemeral and the PSK). The others get it from the peer's first record.
        confirmed = self.initiator == (self.pattern is Pattern.IK)
        return SealedChannel(
            connection,
            initiator=self.initiator,
            remote_static=self._remote_static,
            peer_confirmed=confirmed,
            now=now,
            policy=policy or RekeyPolicy(),
            max_envelope_bytes=max_envelope_bytes,
        )


class Initiator(_Handshake):
    """The collector's end: IK when `server_static` is pinned, XX (first contact) otherwise.

    `psk` is the access key's 32-byte secret, `access_key_id` its public id. With XX,
    pin `channel.remote_static` only once `channel.peer_confirmed` is true: before the
    server's first record opens, anyone could have sent message 2.
    """

    initiator = True

    def __init__(
        self,
        *,
        static_private: bytes,
        access_key_id: str,
        psk: bytes,
        transport: str,
        server_static: bytes | None = None,
        ephemeral_private: bytes | None = None,
    ) -> None:
        super().__init__(transport, ephemeral_private)
        _check_key("the static key", static_private)
        _check_key("the PSK", psk)
        _check_key("the server's static key", server_static)
        self._key_id = encode_key_id(access_key_id)
        self.access_key_id = access_key_id
        self.pattern = Pattern.IK if server_static is not None else Pattern.XX
        self._remote_static = server_static
        self._connection = noise_connection(
            PROTOCOL_NAMES[self.pattern],
            initiator=True,
            prologue=self.prologue,
            static_private=static_private,
            psk=psk,
            remote_static=server_static,
            ephemeral_private=ephemeral_private,
        )

    def write_message(self, payload: bytes = b"") -> bytes:
        """The next frame to send: message 1 (pattern byte, key id, `payload`) or XX message 3."""
        self._guard(writing=True)
        if self._index == 0:
            assert self.pattern is not None
            return bytes([self.pattern]) + self._write(self._key_id + payload)
        return self._write(payload)

    def read_message(self, frame: bytes) -> bytes:
        """Check the server's message 2 and return its payload."""
        self._guard(writing=False)
        if self.pattern is Pattern.IK:
            assert self._remote_static is not None
            failure = (
                f"the server did not prove the pinned key {fingerprint(self._remote_static)} and access key "
                f"{self.access_key_id!r}: another gateway key (relaying or impersonating), another access-key "
                "secret, or an altered message"
            )
        else:
            failure = "the server's handshake message 2 did not decrypt (altered in transit?)"
        return self._read(frame, failure)


class Responder(_Handshake):
    """The gateway's end: reads the pattern byte, then runs IK or (if allowed) XX.

    `psk_for` maps the access-key id from message 1 to its PSK (None: unknown, revoked or
    expired). It is called once per handshake, after message 1 and before any message the
    PSK goes into; it must answer from memory (the gateway's access-key cache).

    During a server key rotation (ADR 0024) `other_static_privates` are the announced and
    the replaced keys: an IK message 1 made for any of them is read (each is tried in
    turn, current first, so the cost is bounded by their number: at most three DH pairs),
    and the handshake proves the key it was addressed to (`static_public`). XX, where the
    collector pins what it learns, always proves the current key.
    """

    initiator = False

    def __init__(
        self,
        *,
        static_private: bytes,
        transport: str,
        psk_for: PskLookup,
        allow_first_contact: bool = True,
        ephemeral_private: bytes | None = None,
        other_static_privates: Sequence[bytes] = (),
    ) -> None:
        super().__init__(transport, ephemeral_private)
        for key in (static_private, *other_static_privates):
            _check_key("the static key", key)
        self._static_private = static_private
        self._other_static_privates = tuple(k for k in other_static_privates if k != static_private)
        self.static_private = static_private
        """The key this handshake proves (IK: the one message 1 was made for)."""
        self._psk_for = psk_for
        self.allow_first_contact = allow_first_contact
        self.pattern = None
        self.access_key_id: str | None = None

    def read_message(self, frame: bytes) -> bytes:
        """Check the collector's next message and return its payload (message 1's without the key id)."""
        self._guard(writing=False)
        if self._index == 0:
            return self._read_first(frame)
        return self._read(
            frame,
            "the collector's handshake message 3 did not decrypt: another access-key secret, "
            "a collector without the private half of the key it sent, or an altered message",
        )

    def _read_first(self, frame: bytes) -> bytes:
        if len(frame) > MAX_HANDSHAKE_FRAME_BYTES:
            self._failed = True
            raise SealedSessionError(
                CloseCause.MALFORMED_HANDSHAKE,
                f"handshake message 1 of {len(frame)} bytes exceeds {MAX_HANDSHAKE_FRAME_BYTES}",
            )
        if not frame or frame[0] not in Pattern._value2member_map_:
            self._failed = True
            raise SealedSessionError(
                CloseCause.MALFORMED_HANDSHAKE,
                f"unknown handshake pattern byte {frame[:1].hex() or 'none'} (1 = IK, 2 = XX)",
            )
        self.pattern = Pattern(frame[0])
        if self.pattern is Pattern.XX and not self.allow_first_contact:
            self._failed = True
            raise SealedSessionError(
                CloseCause.FIRST_CONTACT_REFUSED,
                "this gateway accepts only collectors that have its key pinned (IK); first contact (XX) is off",
            )
        payload = self._read_first_with_each_key(frame[1:])
        key_id, rest = self._decode(payload)
        psk = self._psk_for(key_id)
        if psk is None:
            self._failed = True
            raise SealedSessionError(
                CloseCause.UNKNOWN_ACCESS_KEY, f"no valid access key has the id {key_id!r} (revoked or expired?)"
            )
        _check_key("the PSK", psk)
        assert self._connection is not None
        self._connection.set_psks(psk=psk)
        return rest

    def _read_first_with_each_key(self, message: bytes) -> bytes:
        """Message 1's payload, read with the first static key it was made for."""
        assert self.pattern is not None
        keys = (
            (self._static_private, *self._other_static_privates)
            if self.pattern is Pattern.IK
            else (self._static_private,)
        )
        for index, key in enumerate(keys):
            # The PSK is not known until the key id is read; noiseprotocol wants one at start, so
            # a placeholder stands in. It is replaced before any message that mixes it in
            # (IK message 2, XX message 3), and a handshake without the real one fails above.
            self._connection = noise_connection(
                PROTOCOL_NAMES[self.pattern],
                initiator=False,
                prologue=self.prologue,
                static_private=key,
                psk=bytes(KEY_BYTES),
                ephemeral_private=self._ephemeral_private,
            )
            try:
                payload = self._read(
                    message,
                    "the collector's handshake message 1 did not decrypt: it was made for another server key "
                    "(a collector pinned to another gateway, or to a server key retired since), by a collector "
                    "without the private half of the key it sent, or altered",
                )
            except SealedSessionError as exc:
                if index + 1 < len(keys) and exc.cause is CloseCause.HANDSHAKE_FAILED:
                    self._failed = False
                    continue
                raise
            self.static_private = key
            return payload
        raise LocalProtocolError("no static key to read message 1 with")  # unreachable: keys is never empty

    def _decode(self, payload: bytes) -> tuple[str, bytes]:
        try:
            key_id, rest = _decode_key_id(payload)
        except SealedSessionError:
            self._failed = True
            raise
        self.access_key_id = key_id
        return key_id, rest

    def write_message(self, payload: bytes = b"") -> bytes:
        """Message 2. In XX it goes before the collector has proven anything: put nothing secret in it."""
        self._guard(writing=True)
        if self.pattern is None:
            raise LocalProtocolError("read the collector's first message before writing")
        return self._write(payload)
