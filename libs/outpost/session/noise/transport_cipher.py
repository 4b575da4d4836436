"""One direction of a finished Noise session: the spec's CipherState, holding its key as 32 bytes.

The transport phase of Noise (the spec's §5.1 CipherState with ChaChaPoly, §4.2's
nonce encoding and §11.3's REKEY) is a key, a 64-bit counter and three operations;
noiseprotocol implements it around a `ChaCha20Poly1305` object created once per key.
Each such object holds OpenSSL cipher contexts, ~2.2 KiB of native memory, and a session
has two: on a gateway holding 10,000 idle sessions that is 45 MiB for nothing (issue
13, item 2). So a finished session keeps the raw keys and builds the AEAD per record,
~1.5 µs more per record (a collector's session seals a heartbeat every 30 s).

The handshake stays noiseprotocol's; only its resulting keys and counters move here
(`from_noise`). The operations are checked against noiseprotocol's own CipherState in
`tests/unit/session/test_transport_cipher.py`; errors are noiseprotocol's exception
types, so the sealed channel's handling is the same for both.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from noise.exceptions import NoiseInvalidMessage, NoiseMaxNonceError

MAX_NONCE = 2**64 - 1
"""Reserved by the spec: never used to encrypt a record, only by REKEY."""
KEY_BYTES = 32
_ZEROS = bytes(KEY_BYTES)
_NONCE_PREFIX = bytes(4)


def _nonce(n: int) -> bytes:
    """ChaChaPoly's nonce (spec §12.3): 32 bits of zeros, then the counter as 64-bit little-endian."""
    return _NONCE_PREFIX + n.to_bytes(8, "little")


class TransportCipher:
    """ENCRYPT/DECRYPT with the next nonce, and REKEY, for one direction of one session."""

    __slots__ = ("_key", "_n")

    def __init__(self, key: bytes, n: int = 0) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a ChaChaPoly key is {KEY_BYTES} bytes")
        self._key = bytes(key)
        self._n = n

    @classmethod
    def from_noise(cls, state: object) -> TransportCipher:
        """The key and counter of a noiseprotocol `CipherState` at the end of a handshake."""
        return cls(state.k, state.n)  # type: ignore[attr-defined]

    def encrypt(self, plaintext: bytes) -> bytes:
        if self._n == MAX_NONCE:
            raise NoiseMaxNonceError("Nonce has depleted!")
        ciphertext = ChaCha20Poly1305(self._key).encrypt(_nonce(self._n), plaintext, None)
        self._n += 1
        return ciphertext

    def decrypt(self, ciphertext: bytes) -> bytes:
        """The plaintext; NoiseInvalidMessage (the counter unchanged) when it does not authenticate."""
        if self._n == MAX_NONCE:
            raise NoiseMaxNonceError("Nonce has depleted!")
        try:
            plaintext = ChaCha20Poly1305(self._key).decrypt(_nonce(self._n), ciphertext, None)
        except InvalidTag as exc:
            raise NoiseInvalidMessage("Failed authentication of message") from exc
        self._n += 1
        return plaintext

    def rekey(self) -> None:
        """REKEY(k): the first 32 bytes of ENCRYPT(k, maxnonce, empty, zeros); the counter is kept."""
        self._key = ChaCha20Poly1305(self._key).encrypt(_nonce(MAX_NONCE), _ZEROS, b"")[:KEY_BYTES]
