"""Sealing a secret to one collector: only the holder of its X25519 private key opens it.

The registry seals discovery credentials to the enabled collector that runs the job; the
gateway only carries the result (`agent_pb2.SealedSecret`) and cannot read it (ADR 0008).

**Written: HPKE** (RFC 9180, ADR 0020), algorithm id ``hpke-base-x25519-sha256-chacha20poly1305``:
base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305 — suite ids
0x0020/0x0001/0x0003, the suite of RFC 9180 Appendix A.2 — through `cryptography`'s
`hpke.Suite` single-shot API. `info` is the context (the job run id) as UTF-8; the
associated data is empty (RFC 9180 §8.1: single-shot callers bind their context in
`info`). On the wire: `ephemeral_public_key` = HPKE `enc` (32 bytes), `nonce` empty (HPKE
derives it), `ciphertext` = the AEAD output (plaintext length + 16-byte tag), `context` =
the context in clear.

**Still opened, written only to collectors that do not open HPKE: the legacy ECIES**
(ADR 0008), algorithm id ``x25519-hkdf-sha256-chacha20poly1305``: fresh X25519 key pair,
ECDH with the recipient key, HKDF-SHA256 (salt = ephemeral public || recipient public,
info ``outpost-sealed-v1``, 32 bytes), ChaCha20-Poly1305 with a random 12-byte nonce and
associated data = algorithm || context. A collector says which algorithms it opens in
`Hello.sealing_algorithms` (this module's `OPENS`); the registry picks with
`choose_algorithm`, so a collector older than HPKE keeps receiving what it can open.

The context a collector passes to `open_sealed` is the one it expects (the run it is
running), never the one the message claims: a ciphertext sealed for one job run does not
open as another's. Every failure to open (wrong key, wrong context, a flipped bit, a
truncated field, an algorithm this code does not open) is a `SealedSecretError` whose
message says which check failed, never the secret.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from outpost.agent.v1 import agent_pb2

HPKE_ALGORITHM = "hpke-base-x25519-sha256-chacha20poly1305"
LEGACY_ALGORITHM = "x25519-hkdf-sha256-chacha20poly1305"
ALGORITHM = HPKE_ALGORITHM
"""What `seal` writes unless told otherwise."""
OPENS: tuple[str, ...] = (HPKE_ALGORITHM, LEGACY_ALGORITHM)
"""Every algorithm `open_sealed` opens, preferred first: what a collector advertises."""

MAX_ADVERTISED = 8
MAX_ALGORITHM_CHARS = 64
"""Bounds on `Hello.sealing_algorithms`: the gateway closes, the registry refuses, beyond them."""

HPKE_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
HKDF_INFO = b"outpost-sealed-v1"
PUBLIC_KEY_BYTES = 32
ENC_BYTES = KEM.X25519.enc_length()
NONCE_BYTES = 12
TAG_BYTES = 16


class SealedSecretError(Exception):
    """A secret could not be sealed or opened; the message says why (never the secret)."""


def public_key_bytes(private_key: X25519PrivateKey) -> bytes:
    """The raw 32-byte public key, as sent in `Hello.encryption_public_key`."""
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def advertised_problem(algorithms: Iterable[str]) -> str | None:
    """Why a hello's `sealing_algorithms` cannot be taken, or None."""
    listed = list(algorithms)
    if len(listed) > MAX_ADVERTISED or any(not a or len(a) > MAX_ALGORITHM_CHARS for a in listed):
        return (
            f"sealing_algorithms: at most {MAX_ADVERTISED} ids of 1 to {MAX_ALGORITHM_CHARS} characters each, "
            f"got {len(listed)}"
        )
    return None


def choose_algorithm(opens: Iterable[str]) -> str:
    """What to seal with for a collector that says it opens `opens`.

    HPKE when it says so; otherwise the legacy algorithm, which every collector that has
    an encryption key opens (an empty list is a collector older than HPKE).
    """
    return HPKE_ALGORITHM if HPKE_ALGORITHM in set(opens) else LEGACY_ALGORITHM


def seal(
    recipient_public_key: bytes, plaintext: bytes, context: str, *, algorithm: str = ALGORITHM
) -> agent_pb2.SealedSecret:
    """Encrypt `plaintext` so that only the owner of `recipient_public_key` opens it, for `context`."""
    recipient = _public_key(recipient_public_key, "recipient public key")
    if algorithm == HPKE_ALGORITHM:
        return _seal_hpke(recipient, plaintext, context)
    if algorithm == LEGACY_ALGORITHM:
        return _seal_legacy(recipient, recipient_public_key, plaintext, context)
    raise SealedSecretError(f"cannot seal with unknown algorithm {algorithm!r}; known: {', '.join(OPENS)}")


def open_sealed(private_key: X25519PrivateKey, sealed: agent_pb2.SealedSecret, context: str) -> bytes:
    """The plaintext of `sealed`, if it was sealed to `private_key` for `context`.

    `context` is what the caller expects (e.g. the job run id it is running), not the
    one the message claims: the claim is only compared for a clearer error message.
    """
    if sealed.algorithm not in OPENS:
        raise SealedSecretError(
            f"unsupported sealing algorithm {sealed.algorithm!r}; this collector opens {', '.join(OPENS)}"
        )
    if sealed.context != context:
        raise SealedSecretError(f"sealed for context {sealed.context!r}, not {context!r}")
    if len(sealed.ciphertext) < TAG_BYTES:
        raise SealedSecretError(f"ciphertext is shorter than its {TAG_BYTES}-byte tag")
    if sealed.algorithm == HPKE_ALGORITHM:
        return _open_hpke(private_key, sealed, context)
    return _open_legacy(private_key, sealed, context)


# --- HPKE (RFC 9180) ------------------------------------------------------------------------
def _seal_hpke(recipient: X25519PublicKey, plaintext: bytes, context: str) -> agent_pb2.SealedSecret:
    try:
        sealed = HPKE_SUITE.encrypt(plaintext, recipient, info=context.encode())
    except ValueError as exc:  # a low-order point: DH would be all zeros (RFC 9180 §7.1.4)
        raise SealedSecretError("the recipient public key is not a usable X25519 key") from exc
    return agent_pb2.SealedSecret(
        algorithm=HPKE_ALGORITHM,
        ephemeral_public_key=sealed[:ENC_BYTES],
        ciphertext=sealed[ENC_BYTES:],
        context=context,
    )


def _open_hpke(private_key: X25519PrivateKey, sealed: agent_pb2.SealedSecret, context: str) -> bytes:
    if len(sealed.ephemeral_public_key) != ENC_BYTES:
        raise SealedSecretError(
            f"HPKE enc (ephemeral_public_key) must be {ENC_BYTES} bytes, got {len(sealed.ephemeral_public_key)}"
        )
    if sealed.nonce:
        raise SealedSecretError(f"HPKE derives its nonce; a sealed secret must carry none, got {len(sealed.nonce)}")
    try:
        return HPKE_SUITE.decrypt(sealed.ephemeral_public_key + sealed.ciphertext, private_key, info=context.encode())
    except (InvalidTag, ValueError):
        raise SealedSecretError(
            "sealed secret does not open: sealed to another key, for another context, or altered"
        ) from None


# --- legacy ECIES (ADR 0008): opened always, written only to collectors without HPKE -------
def _seal_legacy(
    recipient: X25519PublicKey, recipient_public_key: bytes, plaintext: bytes, context: str
) -> agent_pb2.SealedSecret:
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
        algorithm=LEGACY_ALGORITHM,
        ephemeral_public_key=ephemeral_public,
        nonce=nonce,
        ciphertext=ciphertext,
        context=context,
    )


def _open_legacy(private_key: X25519PrivateKey, sealed: agent_pb2.SealedSecret, context: str) -> bytes:
    if len(sealed.nonce) != NONCE_BYTES:
        raise SealedSecretError(f"nonce must be {NONCE_BYTES} bytes, got {len(sealed.nonce)}")
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
    return LEGACY_ALGORITHM.encode() + context.encode()
