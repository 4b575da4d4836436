"""What a collector signs to replace its identity key, and how the registry checks it.

A collector rotates its Ed25519 key inside a live, accepted sealed session (ADR 0024,
"Collector identity key"). The message both keys sign is domain-separated and
length-prefixed (no field can be shifted into another):

    "outpost-key-rotation/1" | instance_uid | old public key | new public key | handshake hash

each part as a 4-byte big-endian length followed by its bytes. The old key's signature
is the authorization (only the holder of the key on record may name its successor); the
new key's signature is proof of possession (nobody can rotate a collector onto a key
they do not hold, e.g. another collector's). The handshake hash is the Noise channel
binding of the session the message travels in, as the gateway terminated it: a rotation
captured from one session fails in any other, and the registry never accepts one outside
a session. The instance uid names the collector, so one collector's rotation can never
be applied to another that (wrongly) shares a key.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from outpost.agent.v1 import agent_pb2
from outpost.session import handshake

CONTEXT = b"outpost-key-rotation/1"


def message(instance_uid: str, old_public_key: bytes, new_public_key: bytes, handshake_hash: bytes) -> bytes:
    """The bytes both keys sign (see the module docstring)."""
    parts = (CONTEXT, instance_uid.encode(), old_public_key, new_public_key, handshake_hash)
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def build(
    instance_uid: str, old_key: Ed25519PrivateKey, new_key: Ed25519PrivateKey, handshake_hash: bytes
) -> agent_pb2.KeyRotation:
    """The KeyRotation a collector sends: `new_key` signed by `old_key`, and by itself."""
    old_public = _raw(old_key.public_key())
    new_public = _raw(new_key.public_key())
    signed = message(instance_uid, old_public, new_public, handshake_hash)
    return agent_pb2.KeyRotation(
        new_public_key=new_public,
        signature=old_key.sign(signed),
        new_key_signature=new_key.sign(signed),
    )


def problem(
    rotation: agent_pb2.KeyRotation, instance_uid: str, old_public_key: bytes, handshake_hash: bytes
) -> str | None:
    """Why `rotation` must be refused for this collector and session; None when both signatures hold."""
    if not handshake_hash:
        return "a key rotation is accepted only inside a sealed session"
    new_public_key = rotation.new_public_key
    if len(new_public_key) != handshake.PUBLIC_KEY_BYTES or len(old_public_key) != handshake.PUBLIC_KEY_BYTES:
        return f"public keys must be {handshake.PUBLIC_KEY_BYTES} bytes"
    if new_public_key == old_public_key:
        return "the new key is the key on record"
    signed = message(instance_uid, old_public_key, new_public_key, handshake_hash)
    if not _verifies(old_public_key, rotation.signature, signed):
        return "the signature of the key on record does not verify for this session"
    if not _verifies(new_public_key, rotation.new_key_signature, signed):
        return "the new key's signature (proof of possession) does not verify"
    return None


def _verifies(public_key: bytes, signature: bytes, signed: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, signed)
    except (InvalidSignature, ValueError):
        return False
    return True


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
