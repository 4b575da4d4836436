"""The KeyRotation message both keys sign, and the rules the registry applies (ADR 0024)."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from outpost.agent.v1 import agent_pb2
from outpost.session import key_rotation

UID = "5f0c8a57-44f5-4b0e-9a57-3d3c1a1f0c11"
HASH = bytes(range(32))


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_the_signed_message_is_the_context_and_four_length_prefixed_fields_byte_for_byte() -> None:
    old, new = b"\x01" * 32, b"\x02" * 32
    expected = (
        (22).to_bytes(4, "big")
        + b"outpost-key-rotation/1"
        + (36).to_bytes(4, "big")
        + UID.encode()
        + (32).to_bytes(4, "big")
        + old
        + (32).to_bytes(4, "big")
        + new
        + (32).to_bytes(4, "big")
        + HASH
    )
    assert key_rotation.message(UID, old, new, HASH) == expected


def test_a_rotation_built_by_the_old_key_verifies_for_its_session_only() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    rotation = key_rotation.build(UID, old, new, HASH)
    assert rotation.new_public_key == _raw(new)
    assert key_rotation.problem(rotation, UID, _raw(old), HASH) is None
    other_session = key_rotation.problem(rotation, UID, _raw(old), secrets.token_bytes(32))
    assert other_session is not None and "key on record" in other_session
    other_collector = key_rotation.problem(rotation, "another-uid", _raw(old), HASH)
    assert other_collector is not None


def test_a_forged_old_signature_an_unproven_new_key_and_odd_keys_are_refused() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged = key_rotation.build(UID, Ed25519PrivateKey.generate(), new, HASH)
    assert "key on record" in (key_rotation.problem(forged, UID, _raw(old), HASH) or "")

    unproven = key_rotation.build(UID, old, new, HASH)
    unproven.new_key_signature = b""
    assert "proof of possession" in (key_rotation.problem(unproven, UID, _raw(old), HASH) or "")

    swapped = key_rotation.build(UID, old, new, HASH)
    swapped.new_key_signature = key_rotation.build(UID, old, Ed25519PrivateKey.generate(), HASH).new_key_signature
    assert "proof of possession" in (key_rotation.problem(swapped, UID, _raw(old), HASH) or "")

    same = key_rotation.build(UID, old, old, HASH)
    assert "key on record" in (key_rotation.problem(same, UID, _raw(old), HASH) or "")
    short = agent_pb2.KeyRotation(new_public_key=b"\x00" * 31)
    assert "32 bytes" in (key_rotation.problem(short, UID, _raw(old), HASH) or "")
    assert "sealed" in (key_rotation.problem(key_rotation.build(UID, old, new, b""), UID, _raw(old), b"") or "")
