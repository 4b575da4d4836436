"""What a collector signs to prove its identity, and how a verifier checks it.

The signature covers a transcript of every identity field of the hello plus the
server's fresh nonce and instance id. A hello altered in transit fails (the transcript
differs), and a stolen database (which holds only public keys and argon2id verifiers)
cannot produce one.

The nonce is the gateway's, and it says when it was issued: its first 8 bytes are the
issue time (Unix milliseconds, big-endian), the other 24 are random (`new_nonce`). The
collector signs it whole, so the time cannot be changed without breaking the proof. The
registry, which decides every handshake, refuses a nonce outside a short window around
its own clock and a nonce it has accepted before (recorded under a unique key in its
database, so the rule holds across replicas): a captured (hello, nonce, signature)
cannot be replayed, not even against the gateway that issued it. The collector treats
the nonce as opaque bytes, so older collectors sign these nonces unchanged.

`Hello.sealing_algorithms` (ADR 0020) is covered too, appended only when non-empty as the
part ``sealing_algorithms`` followed by one part holding each id length-prefixed: a hello
without it signs the transcript older collectors sign, and a list added, removed or
changed in transit breaks the proof (nobody on the path can ask the registry for the
legacy sealing algorithm on a collector's behalf).

`Hello.enrollment_token` (ADR 0022) is covered the same way, after it: the part
``enrollment_token`` followed by the token text, only when set. The registry enrolls the
key that signed the token, so a token cannot be moved onto another collector's hello.

A sealed session (ADR 0019) adds a channel binding the same way: the part
``handshake_hash`` followed by the Noise handshake hash of the session the hello travels
in. The gateway reports the hash of the session it terminated
(`AuthenticateCollectorRequest.handshake_hash`) and the registry verifies the proof with
it, so a proof made inside one sealed session cannot be replayed inside another (a
relaying gateway would have to terminate the collector's session with its own keys, and
then the hashes differ). An unsealed session has no hash and signs what it signed before.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from outpost.agent.v1 import agent_pb2

CONTEXT = b"outpost-agent-v1-handshake"
NONCE_BYTES = 32
NONCE_TIME_BYTES = 8
PUBLIC_KEY_BYTES = 32


def new_nonce(now_unix_ms: int) -> bytes:
    """A challenge nonce issued at `now_unix_ms`: 8 bytes of issue time, 24 random bytes."""
    return now_unix_ms.to_bytes(NONCE_TIME_BYTES, "big") + secrets.token_bytes(NONCE_BYTES - NONCE_TIME_BYTES)


def nonce_issued_at_ms(nonce: bytes) -> int:
    """When `nonce` says it was issued (Unix ms); meaningful only once the proof verified."""
    return int.from_bytes(nonce[:NONCE_TIME_BYTES], "big")


def transcript(hello: agent_pb2.Hello, nonce: bytes, server_instance: str, channel_binding: bytes = b"") -> bytes:
    """Length-prefixed concatenation: unambiguous, independent of protobuf encoding.

    `channel_binding` is the sealed session's Noise handshake hash (empty when unsealed).
    """
    parts = [
        CONTEXT,
        nonce,
        server_instance.encode(),
        hello.instance_uid.encode(),
        hello.name.encode(),
        hello.zone.encode(),
        hello.username.encode(),
        hello.password_verifier.encode(),
        hello.public_key,
        hello.bound_server_instance.encode(),
        hello.protocol_version.to_bytes(4, "big"),
        hello.encryption_public_key,
    ]
    if hello.sealing_algorithms:
        # Optional trailing fields are a (name, value) pair of parts and present only when
        # set, so the transcript of a hello without them is what older collectors sign.
        parts += [b"sealing_algorithms", _length_prefixed(a.encode() for a in hello.sealing_algorithms)]
    if hello.enrollment_token:
        parts += [b"enrollment_token", hello.enrollment_token.encode()]
    if channel_binding:
        parts += [b"handshake_hash", channel_binding]
    return _length_prefixed(parts)


def _length_prefixed(parts: Iterable[bytes]) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def sign(
    private_key: Ed25519PrivateKey,
    hello: agent_pb2.Hello,
    nonce: bytes,
    server_instance: str,
    channel_binding: bytes = b"",
) -> bytes:
    return private_key.sign(transcript(hello, nonce, server_instance, channel_binding))


def verify(
    hello: agent_pb2.Hello, nonce: bytes, server_instance: str, signature: bytes, channel_binding: bytes = b""
) -> bool:
    """True when `signature` was made by the private key matching `hello.public_key`
    over this transcript (with `channel_binding`, the sealed session's handshake hash)."""
    if len(hello.public_key) != PUBLIC_KEY_BYTES or len(nonce) != NONCE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(hello.public_key).verify(
            signature, transcript(hello, nonce, server_instance, channel_binding)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def fingerprint(public_key: bytes) -> str:
    """OpenSSH-style "SHA256:<base64>" of the raw public key, as admins compare it."""
    digest = hashlib.sha256(public_key).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
