"""Sealed secrets (`outpost.sealing`): only the recipient opens them, for their context only.

HPKE (RFC 9180) is what `seal` writes; the legacy ECIES is still opened, and still written
when asked for (the registry asks for it for collectors that do not list HPKE).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from outpost import sealing
from outpost.agent.v1 import agent_pb2
from outpost.sealing import (
    ALGORITHM,
    HPKE_ALGORITHM,
    LEGACY_ALGORITHM,
    NONCE_BYTES,
    OPENS,
    SealedSecretError,
    choose_algorithm,
    open_sealed,
    public_key_bytes,
    seal,
)
from services.registry.domain import authentication

RECIPIENT = X25519PrivateKey.from_private_bytes(b"\x11" * 32)
OTHER = X25519PrivateKey.from_private_bytes(b"\x22" * 32)
CONTEXT = "job-run-42"
SECRET = b"community=canary-c0mmunity"
BOTH = [HPKE_ALGORITHM, LEGACY_ALGORITHM]


def sealed_secret(
    plaintext: bytes = SECRET, context: str = CONTEXT, algorithm: str = ALGORITHM
) -> agent_pb2.SealedSecret:
    return seal(public_key_bytes(RECIPIENT), plaintext, context, algorithm=algorithm)


# --- which algorithm ---------------------------------------------------------------------------
def test_hpke_is_written_by_default_and_both_are_opened() -> None:
    assert ALGORITHM == HPKE_ALGORITHM == "hpke-base-x25519-sha256-chacha20poly1305"
    assert LEGACY_ALGORITHM == "x25519-hkdf-sha256-chacha20poly1305"
    assert OPENS == (HPKE_ALGORITHM, LEGACY_ALGORITHM)


@pytest.mark.parametrize(
    ("advertised", "chosen"),
    [
        ((), LEGACY_ALGORITHM),  # a collector older than HPKE lists nothing
        ((LEGACY_ALGORITHM,), LEGACY_ALGORITHM),
        ((HPKE_ALGORITHM,), HPKE_ALGORITHM),
        ((LEGACY_ALGORITHM, HPKE_ALGORITHM), HPKE_ALGORITHM),
        (("hpke-base-x25519-sha256-aes128gcm", "something-newer"), LEGACY_ALGORITHM),
    ],
)
def test_hpke_is_chosen_only_for_a_collector_that_lists_it(advertised: tuple[str, ...], chosen: str) -> None:
    assert choose_algorithm(advertised) == chosen


def test_an_unknown_algorithm_is_not_written() -> None:
    with pytest.raises(SealedSecretError, match="cannot seal with unknown algorithm 'rot13'"):
        sealed_secret(algorithm="rot13")


def test_the_advertised_list_is_bounded_alike_on_gateway_and_registry() -> None:
    assert sealing.advertised_problem(OPENS) is None
    assert sealing.advertised_problem([]) is None
    assert sealing.advertised_problem(["x"] * 9) is not None
    assert sealing.advertised_problem(["x" * 65]) is not None
    assert sealing.advertised_problem([""]) is not None
    assert authentication.MAX_SEALING_ALGORITHMS == sealing.MAX_ADVERTISED
    assert authentication.MAX_SEALING_ALGORITHM_CHARS == sealing.MAX_ALGORITHM_CHARS


# --- both algorithms -----------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", BOTH)
@settings(max_examples=30, deadline=None)
@given(plaintext=st.binary(max_size=4096), context=st.text(max_size=64))
def test_any_plaintext_round_trips_for_its_recipient_and_context(
    algorithm: str, plaintext: bytes, context: str
) -> None:
    sealed = seal(public_key_bytes(RECIPIENT), plaintext, context, algorithm=algorithm)
    assert sealed.algorithm == algorithm
    assert open_sealed(RECIPIENT, sealed, context) == plaintext


@pytest.mark.parametrize("algorithm", BOTH)
@settings(max_examples=30, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_single_bit_flip_in_the_ciphertext_is_detected(
    algorithm: str, plaintext: bytes, data: st.DataObject
) -> None:
    sealed = sealed_secret(plaintext, algorithm=algorithm)
    position = data.draw(st.integers(0, len(sealed.ciphertext) * 8 - 1))
    flipped = bytearray(sealed.ciphertext)
    flipped[position // 8] ^= 1 << (position % 8)
    sealed.ciphertext = bytes(flipped)
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, sealed, CONTEXT)


@pytest.mark.parametrize("algorithm", BOTH)
def test_another_private_key_cannot_open_it(algorithm: str) -> None:
    with pytest.raises(SealedSecretError, match="sealed to another key, for another context, or altered"):
        open_sealed(OTHER, sealed_secret(algorithm=algorithm), CONTEXT)


@pytest.mark.parametrize("algorithm", BOTH)
def test_it_does_not_open_for_another_job_run(algorithm: str) -> None:
    with pytest.raises(SealedSecretError, match="sealed for context 'job-run-42', not 'job-run-43'"):
        open_sealed(RECIPIENT, sealed_secret(algorithm=algorithm), "job-run-43")


@pytest.mark.parametrize("algorithm", BOTH)
def test_a_context_rewritten_in_transit_does_not_open(algorithm: str) -> None:
    sealed = sealed_secret(algorithm=algorithm)
    sealed.context = "job-run-43"
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, sealed, "job-run-43")


@pytest.mark.parametrize("algorithm", BOTH)
def test_every_seal_uses_a_fresh_ephemeral_key(algorithm: str) -> None:
    first, second = sealed_secret(algorithm=algorithm), sealed_secret(algorithm=algorithm)
    assert first.ephemeral_public_key != second.ephemeral_public_key
    assert first.ciphertext != second.ciphertext


@pytest.mark.parametrize("algorithm", BOTH)
def test_a_tampered_ephemeral_key_does_not_open(algorithm: str) -> None:
    sealed = sealed_secret(algorithm=algorithm)
    changed = bytearray(sealed.ephemeral_public_key)
    changed[0] ^= 0x02
    sealed.ephemeral_public_key = bytes(changed)
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, sealed, CONTEXT)


@pytest.mark.parametrize("algorithm", BOTH)
def test_a_ciphertext_moved_under_another_ephemeral_key_does_not_open(algorithm: str) -> None:
    first, second = sealed_secret(b"first", algorithm=algorithm), sealed_secret(b"other", algorithm=algorithm)
    first.ephemeral_public_key = second.ephemeral_public_key
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, first, CONTEXT)


@pytest.mark.parametrize("algorithm", BOTH)
@pytest.mark.parametrize(("key", "message"), [(b"\x05" * 31, "must be 32 bytes"), (b"\x00" * 32, "not a usable")])
def test_sealing_to_an_unusable_public_key_is_an_error(algorithm: str, key: bytes, message: str) -> None:
    with pytest.raises(SealedSecretError, match=message):
        seal(key, SECRET, CONTEXT, algorithm=algorithm)


@pytest.mark.parametrize(
    "algorithm", ["x25519-hkdf-sha256-aes256gcm", "", "hpke-base-x25519-sha256-aes128gcm"], ids=repr
)
def test_an_algorithm_this_collector_does_not_open_is_named(algorithm: str) -> None:
    sealed = sealed_secret()
    sealed.algorithm = algorithm
    with pytest.raises(SealedSecretError, match=f"unsupported sealing algorithm '{algorithm}'; this collector opens"):
        open_sealed(RECIPIENT, sealed, CONTEXT)


def test_an_hpke_secret_relabelled_as_legacy_does_not_open() -> None:
    sealed = sealed_secret()
    sealed.algorithm = LEGACY_ALGORITHM
    with pytest.raises(SealedSecretError, match="nonce must be 12 bytes, got 0"):
        open_sealed(RECIPIENT, sealed, CONTEXT)
    sealed.nonce = b"\x00" * NONCE_BYTES
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, sealed, CONTEXT)


def test_a_legacy_secret_relabelled_as_hpke_does_not_open() -> None:
    sealed = sealed_secret(algorithm=LEGACY_ALGORITHM)
    sealed.algorithm = HPKE_ALGORITHM
    with pytest.raises(SealedSecretError, match="HPKE derives its nonce"):
        open_sealed(RECIPIENT, sealed, CONTEXT)
    sealed.nonce = b""
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, sealed, CONTEXT)


# --- HPKE ----------------------------------------------------------------------------------------
def test_an_hpke_secret_carries_enc_and_ciphertext_only_and_hides_the_plaintext() -> None:
    sealed = sealed_secret()
    assert sealed.algorithm == HPKE_ALGORITHM
    assert sealed.context == CONTEXT
    assert len(sealed.ephemeral_public_key) == 32
    assert sealed.nonce == b""
    assert len(sealed.ciphertext) == len(SECRET) + 16
    assert b"canary" not in sealed.SerializeToString()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ephemeral_public_key", b"\x01" * 31, "HPKE enc \\(ephemeral_public_key\\) must be 32 bytes, got 31"),
        ("ephemeral_public_key", b"", "HPKE enc \\(ephemeral_public_key\\) must be 32 bytes, got 0"),
        ("ephemeral_public_key", b"\x00" * 32, "does not open"),  # a low-order point
        ("nonce", b"\x00" * 12, "HPKE derives its nonce; a sealed secret must carry none, got 12"),
        ("ciphertext", b"\x00" * 15, "shorter than its 16-byte tag"),
        ("ciphertext", b"", "shorter than its 16-byte tag"),
    ],
)
def test_malformed_hpke_fields_are_refused_with_a_message_naming_them(field: str, value: bytes, message: str) -> None:
    sealed = sealed_secret()
    setattr(sealed, field, value)
    with pytest.raises(SealedSecretError, match=message):
        open_sealed(RECIPIENT, sealed, CONTEXT)


def test_a_truncated_enc_with_its_bytes_moved_into_the_ciphertext_does_not_open() -> None:
    sealed = sealed_secret()
    sealed.ciphertext = sealed.ephemeral_public_key[-1:] + sealed.ciphertext
    sealed.ephemeral_public_key = sealed.ephemeral_public_key[:-1]
    with pytest.raises(SealedSecretError, match="must be 32 bytes, got 31"):
        open_sealed(RECIPIENT, sealed, CONTEXT)


# --- legacy (ADR 0008) ---------------------------------------------------------------------------
def test_a_legacy_secret_names_its_algorithm_and_carries_a_random_nonce() -> None:
    sealed = sealed_secret(algorithm=LEGACY_ALGORITHM)
    assert sealed.algorithm == LEGACY_ALGORITHM
    assert len(sealed.ephemeral_public_key) == 32
    assert len(sealed.nonce) == NONCE_BYTES
    assert len(sealed.ciphertext) == len(SECRET) + 16
    assert b"canary" not in sealed.SerializeToString()
    assert sealed.nonce != sealed_secret(algorithm=LEGACY_ALGORITHM).nonce


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("nonce", b"\x00" * 11, "nonce must be 12 bytes, got 11"),
        ("ciphertext", b"\x00" * 15, "shorter than its 16-byte tag"),
        ("ephemeral_public_key", b"\x01" * 31, "ephemeral public key must be 32 bytes"),
        ("ephemeral_public_key", b"\x00" * 32, "not a usable X25519 key"),
    ],
)
def test_malformed_legacy_fields_are_refused_with_a_message_naming_them(field: str, value: bytes, message: str) -> None:
    sealed = sealed_secret(algorithm=LEGACY_ALGORITHM)
    setattr(sealed, field, value)
    with pytest.raises(SealedSecretError, match=message):
        open_sealed(RECIPIENT, sealed, CONTEXT)


def test_a_tampered_legacy_nonce_does_not_open() -> None:
    sealed = sealed_secret(algorithm=LEGACY_ALGORITHM)
    changed = bytearray(sealed.nonce)
    changed[0] ^= 0x80
    sealed.nonce = bytes(changed)
    with pytest.raises(SealedSecretError, match="does not open"):
        open_sealed(RECIPIENT, sealed, CONTEXT)
