"""A sealed session's transport object: envelopes in and out as Noise transport records.

Theory of operation
-------------------
After the handshake each direction has its own Noise CipherState (ChaCha20-Poly1305 under
a key unique to the session, nonce = a counter that starts at 0 and goes up by one per
record). The nonce is never sent: the receiver decrypts record n with nonce n. So a
replayed, reordered, dropped-then-later or altered record fails its tag, and the channel
raises `SealedSessionError(RECORD_AUTHENTICATION_FAILED)`; the caller closes the session
(a stream that lost sync cannot be resumed: that is the point). A failed channel opens
nothing more; it may still seal, so the caller can send a Disconnect.

A record's plaintext is one flags byte and a fragment of an envelope:

    record  = ChaChaPoly(k, n, ad = empty, flags || fragment)      (at most 65,535 bytes)
    flags   = 0x01 REKEY: the sender rekeys this direction after this record
              0x02 MORE:  the envelope continues in the next record
              other bits: must be 0 (MALFORMED_RECORD)

Noise caps a message at 65,535 bytes; an envelope may be up to `max_envelope_bytes`
(1 MiB, the TCP frame bound), so it is cut into fragments of at most 65,518 bytes and the
receiver joins them, refusing more than its bound before buffering it.

Rekey (Noise's `REKEY()`: k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes);
the nonce counter goes on) keeps both sides in step without a message of its own:

- by count: after every `REKEY_EVERY_RECORDS` records of a direction (counted since that
  direction's last rekey), sender and receiver each rekey. Both count the same records,
  because a record that does not open ends the session;
- by time: when the sender's `now` is `RekeyPolicy.seconds` past its last rekey, it sets
  REKEY on the next record and rekeys after sealing it; the receiver rekeys after opening
  a record with REKEY. Only the sender's clock matters, so the clocks need not agree.

A rekey replaces the key in memory: records sealed before it cannot be decrypted with the
keys held after it. `now` is passed in (`time.monotonic()` in the transport); nothing here
reads a clock or does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from noise.connection import NoiseConnection
from noise.exceptions import NoiseInvalidMessage, NoiseMaxNonceError

from outpost.session.errors import LocalProtocolError
from outpost.session.noise.errors import CloseCause, SealedSessionError
from outpost.session.noise.transport_cipher import TransportCipher

MAX_RECORD_BYTES = 65535
TAG_BYTES = 16
FLAGS_BYTES = 1
MIN_RECORD_BYTES = FLAGS_BYTES + TAG_BYTES
MAX_FRAGMENT_BYTES = MAX_RECORD_BYTES - TAG_BYTES - FLAGS_BYTES
FLAG_REKEY = 0x01
FLAG_MORE = 0x02
DEFINED_FLAGS = FLAG_REKEY | FLAG_MORE

REKEY_EVERY_RECORDS = 65536
"""A protocol constant: both ends of a direction must use the same count."""
DEFAULT_MAX_ENVELOPE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RekeyPolicy:
    """When this end rekeys what it sends. `records` must equal the peer's (a protocol constant
    outside tests); `seconds` is the sender's own choice, signalled by the REKEY flag."""

    records: int = REKEY_EVERY_RECORDS
    seconds: float = 600.0

    def __post_init__(self) -> None:
        if self.records < 1 or not self.seconds > 0:
            raise LocalProtocolError(f"a rekey policy needs records >= 1 and seconds > 0, not {self}")


class SealedChannel:
    """Seal envelopes into records and open records into envelopes, for one session."""

    def __init__(
        self,
        connection: NoiseConnection,
        *,
        initiator: bool,
        remote_static: bytes,
        peer_confirmed: bool,
        now: float,
        policy: RekeyPolicy,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    ) -> None:
        if not connection.handshake_finished:
            raise LocalProtocolError("a sealed channel needs a finished handshake")
        protocol = connection.noise_protocol
        # Only the two directions' keys and counters outlive the handshake (transport_cipher.py):
        # noiseprotocol's connection, key pairs and PSK are let go with it.
        self._send = TransportCipher.from_noise(protocol.cipher_state_encrypt)
        self._receive = TransportCipher.from_noise(protocol.cipher_state_decrypt)
        self.initiator = initiator
        self.remote_static = remote_static
        self.handshake_hash = bytes(connection.get_handshake_hash())
        """Unique to this session; a later proof (the Ed25519 hello) can sign it as a channel binding."""
        self.policy = policy
        self.max_envelope_bytes = max_envelope_bytes
        self._peer_confirmed = peer_confirmed
        self._failed = False
        self._partial = bytearray()
        self.records_sealed = 0
        self.records_opened = 0
        self.rekeys_sent = 0
        self.rekeys_received = 0
        self._sent_since_rekey = 0
        self._opened_since_rekey = 0
        self._send_keyed_at = now

    @property
    def peer_confirmed(self) -> bool:
        """Whether the peer has proven it holds this session's keys (see ADR 0019's table).

        A responder acts on nothing before this (IK message 1 can be a replay); a collector
        on first contact pins `remote_static` only after this.
        """
        return self._peer_confirmed

    @property
    def failed(self) -> bool:
        return self._failed

    @property
    def incomplete_bytes(self) -> int:
        """Bytes of an envelope whose last fragment has not arrived (nonzero at close = truncated)."""
        return len(self._partial)

    def seal(self, envelope: bytes, now: float) -> list[bytes]:
        """The records that carry `envelope`, in order; send each as one transport frame."""
        if len(envelope) > self.max_envelope_bytes:
            raise LocalProtocolError(f"an envelope of {len(envelope)} bytes exceeds {self.max_envelope_bytes}")
        view = memoryview(envelope)
        records: list[bytes] = []
        start = 0
        while True:
            fragment = view[start : start + MAX_FRAGMENT_BYTES]
            start += len(fragment)
            more = start < len(envelope)
            rekey = not more and now - self._send_keyed_at >= self.policy.seconds
            flags = (FLAG_MORE if more else 0) | (FLAG_REKEY if rekey else 0)
            try:
                records.append(self._send.encrypt(bytes([flags]) + fragment))
            except NoiseMaxNonceError as exc:
                raise SealedSessionError(CloseCause.NONCE_EXHAUSTED, "this direction has used every nonce") from exc
            self.records_sealed += 1
            self._sent_since_rekey += 1
            if rekey or self._sent_since_rekey >= self.policy.records:
                self._send.rekey()
                self._sent_since_rekey = 0
                self._send_keyed_at = now
                self.rekeys_sent += 1
            if not more:
                return records

    def open(self, record: bytes) -> bytes | None:
        """The envelope this record completes, or None when more fragments follow."""
        if self._failed:
            raise LocalProtocolError("this sealed channel failed; close the session")
        if len(record) < MIN_RECORD_BYTES:
            self._fail(
                CloseCause.RECORD_TRUNCATED,
                f"record {self.records_opened} of {len(record)} bytes is truncated (at least {MIN_RECORD_BYTES})",
            )
        if len(record) > MAX_RECORD_BYTES:
            self._fail(
                CloseCause.RECORD_TOO_LARGE,
                f"record {self.records_opened} of {len(record)} bytes exceeds Noise's {MAX_RECORD_BYTES}",
            )
        try:
            plaintext = self._receive.decrypt(bytes(record))
        except NoiseInvalidMessage:
            self._fail(*self._authentication_failure())
        except NoiseMaxNonceError:
            self._fail(CloseCause.NONCE_EXHAUSTED, "the peer's direction has used every nonce")
        flags = plaintext[0]
        if flags & ~DEFINED_FLAGS:
            self._fail(CloseCause.MALFORMED_RECORD, f"record {self.records_opened} has undefined flags {flags:#04x}")
        self._peer_confirmed = True
        self.records_opened += 1
        self._opened_since_rekey += 1
        if flags & FLAG_REKEY or self._opened_since_rekey >= self.policy.records:
            self._receive.rekey()
            self._opened_since_rekey = 0
            self.rekeys_received += 1
        if len(self._partial) + len(plaintext) - FLAGS_BYTES > self.max_envelope_bytes:
            self._fail(CloseCause.ENVELOPE_TOO_LARGE, f"an envelope beyond {self.max_envelope_bytes} bytes")
        if flags & FLAG_MORE:
            self._partial += memoryview(plaintext)[FLAGS_BYTES:]
            return None
        if not self._partial:
            return plaintext[FLAGS_BYTES:]
        self._partial += memoryview(plaintext)[FLAGS_BYTES:]
        envelope = bytes(self._partial)
        self._partial.clear()
        return envelope

    def _authentication_failure(self) -> tuple[CloseCause, str]:
        n = self.records_opened
        if not self._peer_confirmed:
            # The first record is the key confirmation: failing it usually means the
            # handshake itself did not agree (another access-key secret or server key).
            return (
                CloseCause.HANDSHAKE_FAILED,
                "the peer's first record did not authenticate: it does not hold this session's keys "
                "(another access-key secret, another static key, a replayed handshake) or the record was altered",
            )
        return (
            CloseCause.RECORD_AUTHENTICATION_FAILED,
            f"record {n} failed authentication: altered, truncated, replayed, reordered or not of this session",
        )

    def _fail(self, cause: CloseCause, message: str) -> NoReturn:
        self._failed = True
        raise SealedSessionError(cause, message)
