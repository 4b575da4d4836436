"""The service password as a per-handshake credential: SCRAM with argon2id (ADR 0025).

This is SCRAM-SHA-256 (RFC 5802, RFC 7677) with argon2id in place of PBKDF2 and the
AuthMessage bound to the session:

    SaltedPassword  = argon2id(verifier_input(username, bound_public_key, password),
                               salt, m, t, p, 32 bytes)
    ClientKey       = HMAC-SHA256(SaltedPassword, "Client Key")
    StoredKey       = SHA-256(ClientKey)
    ClientSignature = HMAC-SHA256(StoredKey, AuthMessage)
    ClientProof     = ClientKey XOR ClientSignature

The server keeps only (salt, costs, bound public key, StoredKey). It checks a proof by
recovering ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage) and comparing
SHA-256(ClientKey) with StoredKey in constant time. A stolen StoredKey proves nothing
(the proof needs ClientKey, a pre-image of it); a proof is worthless outside its session,
because AuthMessage covers the handshake transcript — the hello, the server's single-use
nonce, the server instance and, on a sealed session, the Noise handshake hash — exactly
what the Ed25519 proof signs (`outpost.session.handshake.transcript`).

SaltedPassword hashes the same bytes as the PHC verifier a collector sends in its hello
(`outpost.registration`), with argon2id's default 32-byte output: the hash in a verifier
on record *is* SaltedPassword, so every registered collector's verifier converts to a
stored key without the password (`from_phc`).

No protobuf and no I/O here: the collector, the registry's pure domain and the tests
share this one definition. argon2 is slow on purpose; callers run it off the event loop
or cache it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw

from outpost.registration import verifier_input

CONTEXT = b"outpost-password-proof-v1"
SALTED_PASSWORD_BYTES = 32
PROOF_BYTES = 32
STORED_KEY_BYTES = 32
PUBLIC_KEY_BYTES = 32
MIN_SALT_BYTES = 8
MAX_SALT_BYTES = 64

MAX_MEMORY_KIB = 262_144
"""256 MiB: the registry's cap on a verifier's memory cost, and the collector's on a challenge's."""
MAX_TIME_COST = 16
MAX_PARALLELISM = 16
MAX_PARAMETER_SETS = 2
"""The current credential and, during a rotation's overlap, the previous one."""

_PHC = re.compile(
    r"\$argon2id\$v=19\$m=(?P<m>[0-9]{1,10}),t=(?P<t>[0-9]{1,5}),p=(?P<p>[0-9]{1,5})"
    r"\$(?P<salt>[A-Za-z0-9+/]{11,86})\$(?P<hash>[A-Za-z0-9+/]{22,86})"
)


@dataclass(frozen=True)
class PasswordParameters:
    """What the server offers in a Challenge for one credential: salt, costs, bound key."""

    salt: bytes
    memory_kib: int
    time_cost: int
    parallelism: int
    public_key: bytes
    """The Ed25519 public key the credential was made for (after a key rotation, the old one)."""


def parameters_problem(params: PasswordParameters) -> str | None:
    """Why these parameters must not be used (a rogue server's huge costs); None when fine."""
    if not MIN_SALT_BYTES <= len(params.salt) <= MAX_SALT_BYTES:
        return f"salt of {len(params.salt)} bytes is outside {MIN_SALT_BYTES}..{MAX_SALT_BYTES}"
    if len(params.public_key) != PUBLIC_KEY_BYTES:
        return f"bound public key of {len(params.public_key)} bytes is not a {PUBLIC_KEY_BYTES}-byte Ed25519 key"
    if not 1 <= params.parallelism <= MAX_PARALLELISM:
        return f"parallelism p={params.parallelism} is outside 1..{MAX_PARALLELISM}"
    if not 1 <= params.time_cost <= MAX_TIME_COST:
        return f"time cost t={params.time_cost} is outside 1..{MAX_TIME_COST}"
    if not 8 * params.parallelism <= params.memory_kib <= MAX_MEMORY_KIB:
        return f"memory cost m={params.memory_kib} KiB is outside {8 * params.parallelism}..{MAX_MEMORY_KIB}"
    return None


def salted_password(password: str, *, username: str, params: PasswordParameters) -> bytes:
    """argon2id of the key-bound password (raw 32 bytes). Slow; ValueError on bad parameters."""
    problem = parameters_problem(params)
    if problem is not None:
        raise ValueError(problem)
    return hash_secret_raw(
        verifier_input(username=username, public_key=params.public_key, password=password),
        params.salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=SALTED_PASSWORD_BYTES,
        type=Type.ID,
    )


def client_key(salted: bytes) -> bytes:
    return hmac.digest(salted, b"Client Key", "sha256")


def stored_key(salted: bytes) -> bytes:
    """What the server keeps: SHA-256(ClientKey)."""
    return hashlib.sha256(client_key(salted)).digest()


def auth_message(transcript: bytes, params: PasswordParameters) -> bytes:
    """The signed message: context, the handshake transcript, then the parameter set, each
    length-prefixed (4-byte big-endian lengths; costs as 4-byte big-endian integers)."""
    parts = [
        CONTEXT,
        transcript,
        params.salt,
        params.memory_kib.to_bytes(4, "big"),
        params.time_cost.to_bytes(4, "big"),
        params.parallelism.to_bytes(4, "big"),
        params.public_key,
    ]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def client_proof(salted: bytes, message: bytes) -> bytes:
    """ClientKey XOR HMAC-SHA256(StoredKey, AuthMessage)."""
    key = client_key(salted)
    signature = hmac.digest(hashlib.sha256(key).digest(), message, "sha256")
    return bytes(a ^ b for a, b in zip(key, signature, strict=True))


def proof_matches(stored: bytes, message: bytes, proof: bytes) -> bool:
    """The server's check: SHA-256(ClientProof XOR HMAC(StoredKey, AuthMessage)) == StoredKey."""
    if len(proof) != PROOF_BYTES or len(stored) != STORED_KEY_BYTES:
        return False
    signature = hmac.digest(stored, message, "sha256")
    recovered = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
    return hmac.compare_digest(hashlib.sha256(recovered).digest(), stored)


@dataclass(frozen=True)
class Converted:
    """A PHC verifier as a stored credential: its parameters (without the key) and StoredKey."""

    salt: bytes
    memory_kib: int
    time_cost: int
    parallelism: int
    stored_key: bytes


def from_phc(verifier: str) -> Converted | None:
    """The stored credential a verifier on record converts to; None when it cannot (not an
    argon2id v=19 PHC string with a 32-byte hash, or costs outside the caps)."""
    match = _PHC.fullmatch(verifier)
    if match is None:
        return None
    salt, digest = _b64(match["salt"]), _b64(match["hash"])
    if salt is None or digest is None or len(digest) != SALTED_PASSWORD_BYTES:
        return None
    converted = Converted(salt, int(match["m"]), int(match["t"]), int(match["p"]), stored_key(digest))
    check = PasswordParameters(salt, converted.memory_kib, converted.time_cost, converted.parallelism, bytes(32))
    return converted if parameters_problem(check) is None else None


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        return None
