"""Sealing a secret to one collector: only the holder of its X25519 private key opens it.

The registry seals discovery credentials to the enabled collector that runs the job; the
gateway only carries the result (`agent_pb2.SealedSecret`) and cannot read it. The
construction is an ephemeral-static ECIES, built only from `cryptography` primitives:

1. a fresh ephemeral X25519 key pair per sealed message;
2. ECDH between the ephemeral private key and the recipient's public key;
3. HKDF-SHA256 over the shared secret, salt = ephemeral public || recipient public (so
   the key is bound to both keys), info = ``outpost-sealed-v1``;
4. ChaCha20-Poly1305 with a random 12-byte nonce (the key is single-use anyway), and
   associated data = algorithm || context.

The `context` names the purpose (the job run id): a ciphertext sealed for one job run
does not open as another's. The algorithm string is checked before anything else and
is part of the associated data, so a future algorithm can never be confused with this one.

Every failure to open (wrong key, wrong context, a flipped bit, a truncated field) is a
`SealedSecretError` whose message says which check failed, never the secret.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from outpost.agent.v1 import agent_pb2

ALGORITHM = "x25519-hkdf-sha256-chacha20poly1305"
HKDF_INFO = b"outpost-sealed-v1"
PUBLIC_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


class SealedSecretError(Exception):
    """A secret could not be sealed or opened; the message says why (never the secret)."""


def public_key_bytes(private_key: X25519PrivateKey) -> bytes:
    """The raw 32-byte public key, as sent in `Hello.encryption_public_key`."""
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(recipient_public_key: bytes, plaintext: bytes, context: str) -> agent_pb2.SealedSecret:
    """Encrypt `plaintext` so that only the owner of `recipient_public_key` can open it."""
    recipient = _public_key(recipient_public_key, "recipient public key")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = public_key_bytes(ephemeral)
    try:
        shared = ephemeral.exchange(recipient)
    except ValueError as exc:  # a low-order point yields an all-zero secret
        raise SealedSecretError("the recipient public key is not a usable X25519 key") from exc
    nonce = os.urandom(NONCE_BYTES)
    key = _derive_key(shared, ephemeral_public, recipient_public_key)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, _associated_data(context))
    return agent_pb2.SealedSecret(
        algorithm=ALGORITHM,
        ephemeral_public_key=ephemeral_public,
        nonce=nonce,
        ciphertext=ciphertext,
        context=context,
    )


def open_sealed(private_key: X25519PrivateKey, sealed: agent_pb2.SealedSecret, context: str) -> bytes:
    """The plaintext of `sealed`, if it was sealed to `private_key` for `context`.

    `context` is what the caller expects (e.g. the job run id it is running), not the
    one the message claims: the claim is only compared for a clearer error message.
    """
    if sealed.algorithm != ALGORITHM:
        raise SealedSecretError(f"unsupported sealing algorithm {sealed.algorithm!r}; expected {ALGORITHM!r}")
    if sealed.context != context:
        raise SealedSecretError(f"sealed for context {sealed.context!r}, not {context!r}")
    if len(sealed.nonce) != NONCE_BYTES:
        raise SealedSecretError(f"nonce must be {NONCE_BYTES} bytes, got {len(sealed.nonce)}")
    if len(sealed.ciphertext) < TAG_BYTES:
        raise SealedSecretError(f"ciphertext is shorter than its {TAG_BYTES}-byte tag")
    ephemeral = _public_key(sealed.ephemeral_public_key, "ephemeral public key")
    try:
        shared = private_key.exchange(ephemeral)
    except ValueError as exc:
        raise SealedSecretError("the ephemeral public key is not a usable X25519 key") from exc
    key = _derive_key(shared, sealed.ephemeral_public_key, public_key_bytes(private_key))
    try:
        return ChaCha20Poly1305(key).decrypt(sealed.nonce, sealed.ciphertext, _associated_data(context))
    except InvalidTag:
        raise SealedSecretError(
            "sealed secret does not open: sealed to another key, for another context, or altered"
        ) from None


def _public_key(raw: bytes, what: str) -> X25519PublicKey:
    if len(raw) != PUBLIC_KEY_BYTES:
        raise SealedSecretError(f"{what} must be {PUBLIC_KEY_BYTES} bytes (raw X25519), got {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


def _derive_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + recipient_public, info=HKDF_INFO)
    return hkdf.derive(shared)


def _associated_data(context: str) -> bytes:
    # The algorithm is a fixed constant checked before use, so the concatenation is unambiguous.
    return ALGORITHM.encode() + context.encode()
