"""Sealed secrets (`outpost.sealing`): only the recipient opens them, for their context only."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from outpost.agent.v1 import agent_pb2
from outpost.sealing import (
    ALGORITHM,
    NONCE_BYTES,
    SealedSecretError,
    open_sealed,
    public_key_bytes,
    seal,
)

RECIPIENT = X25519PrivateKey.from_private_bytes(b"\x11" * 32)
OTHER = X25519PrivateKey.from_private_bytes(b"\x22" * 32)
CONTEXT = "job-run-42"
SECRET = b"community=canary-c0mmunity"


def sealed_secret(plaintext: bytes = SECRET, context: str = CONTEXT) -> agent_pb2.SealedSecret:
    return seal(public_key_bytes(RECIPIENT), plaintext, context)


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=4096), context=st.text(max_size=64))
def test_any_plaintext_round_trips_for_its_recipient_and_context(plaintext: bytes, context: str) -> None:
    sealed = seal(public_key_bytes(RECIPIENT), plaintext, context)
    assert open_sealed(RECIPIENT, sealed, context) == plaintext


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_single_bit_flip_in_the_ciphertext_is_detected(plaintext: bytes, data: st.DataObject) -> None:
    sealed = sealed_secret(plaintext)
    position = data.draw(st.integers(0, len(sealed.ciphertext) * 8 - 1))
    flipped = bytearray(sealed.ciphertext)
    flipped[position // 8] ^= 1 << (position % 8)
    sealed.ciphertext = bytes(flipped)
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, sealed, CONTEXT)


def test_the_sealed_message_names_its_algorithm_and_context_and_hides_the_plaintext() -> None:
    sealed = sealed_secret()
    assert sealed.algorithm == ALGORITHM == "x25519-hkdf-sha256-chacha20poly1305"
    assert sealed.context == CONTEXT
    assert len(sealed.ephemeral_public_key) == 32
    assert len(sealed.nonce) == NONCE_BYTES
    assert len(sealed.ciphertext) == len(SECRET) + 16
    assert b"canary" not in sealed.SerializeToString()


def test_every_seal_uses_a_fresh_ephemeral_key_and_nonce() -> None:
    first, second = sealed_secret(), sealed_secret()
    assert first.ephemeral_public_key != second.ephemeral_public_key
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def test_another_private_key_cannot_open_it() -> None:
    with pytest.raises(SealedSecretError, match="sealed to another key, for another context, or altered"):
        open_sealed(OTHER, sealed_secret(), CONTEXT)


def test_it_does_not_open_for_another_context() -> None:
    with pytest.raises(SealedSecretError, match="sealed for context 'job-run-42', not 'job-run-43'"):
        open_sealed(RECIPIENT, sealed_secret(), "job-run-43")


def test_a_context_rewritten_in_transit_does_not_open() -> None:
    sealed = sealed_secret()
    sealed.context = "job-run-43"
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, sealed, "job-run-43")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("algorithm", "x25519-hkdf-sha256-aes256gcm", "unsupported sealing algorithm"),
        ("algorithm", "", "unsupported sealing algorithm"),
        ("nonce", b"\x00" * 11, "nonce must be 12 bytes, got 11"),
        ("ciphertext", b"\x00" * 15, "shorter than its 16-byte tag"),
        ("ephemeral_public_key", b"\x01" * 31, "ephemeral public key must be 32 bytes"),
        ("ephemeral_public_key", b"\x00" * 32, "not a usable X25519 key"),
    ],
)
def test_malformed_fields_are_refused_with_a_message_naming_them(field: str, value: object, message: str) -> None:
    sealed = sealed_secret()
    setattr(sealed, field, value)
    with pytest.raises(SealedSecretError, match=message):
        open_sealed(RECIPIENT, sealed, CONTEXT)


@pytest.mark.parametrize("field", ["ephemeral_public_key", "nonce"])
def test_a_tampered_key_exchange_or_nonce_does_not_open(field: str) -> None:
    sealed = sealed_secret()
    changed = bytearray(getattr(sealed, field))
    changed[0] ^= 0x80 if field == "nonce" else 0x02
    setattr(sealed, field, bytes(changed))
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, sealed, CONTEXT)


def test_a_ciphertext_moved_under_another_ephemeral_key_does_not_open() -> None:
    first, second = sealed_secret(b"first"), sealed_secret(b"other")
    first.ephemeral_public_key = second.ephemeral_public_key
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, first, CONTEXT)


@pytest.mark.parametrize(("key", "message"), [(b"\x05" * 31, "must be 32 bytes"), (b"\x00" * 32, "not a usable")])
def test_sealing_to_an_unusable_public_key_is_an_error(key: bytes, message: str) -> None:
    with pytest.raises(SealedSecretError, match=message):
        seal(key, SECRET, CONTEXT)
