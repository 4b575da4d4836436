"""The signed handshake transcript and the key fingerprint admins compare."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from outpost.agent.v1 import agent_pb2
from outpost.session import handshake
from tests.unit.collector_identity import (
    HELLO,
    NONCE,
    OTHER_NONCE,
    OTHER_SERVER_INSTANCE,
    PRIVATE_KEY,
    PUBLIC_KEY,
    SERVER_INSTANCE,
    SIGNATURE,
    make_hello,
)

OTHER_KEY = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
OTHER_PUBLIC_KEY = OTHER_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_proof_made_with_the_hello_key_verifies() -> None:
    assert handshake.verify(HELLO, NONCE, SERVER_INSTANCE, SIGNATURE)


# Every field the transcript covers, with a changed value.
HELLO_CHANGES = [
    ("instance_uid", "0b7f6a3e-uie"),
    ("name", "edge-8"),
    ("zone", "dc-south"),
    ("zone", ""),
    ("username", "svc-edge-8"),
    ("password_verifier", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaB"),
    ("public_key", OTHER_PUBLIC_KEY),
    ("bound_server_instance", SERVER_INSTANCE),
    ("protocol_version", 2),
]


@pytest.mark.parametrize(
    ("field", "value"), HELLO_CHANGES, ids=[f"{field}={value!r}" for field, value in HELLO_CHANGES]
)
def test_any_change_to_a_signed_hello_field_breaks_verification(field: str, value: object) -> None:
    altered = make_hello(**{field: value})

    assert not handshake.verify(altered, NONCE, SERVER_INSTANCE, SIGNATURE)


def test_proof_for_another_nonce_does_not_verify() -> None:
    assert not handshake.verify(HELLO, OTHER_NONCE, SERVER_INSTANCE, SIGNATURE)


def test_proof_for_another_server_instance_does_not_verify() -> None:
    assert not handshake.verify(HELLO, NONCE, OTHER_SERVER_INSTANCE, SIGNATURE)


def test_proof_made_with_another_key_does_not_verify() -> None:
    forged = handshake.sign(OTHER_KEY, HELLO, NONCE, SERVER_INSTANCE)

    assert not handshake.verify(HELLO, NONCE, SERVER_INSTANCE, forged)


def test_moving_bytes_between_adjacent_fields_changes_the_transcript() -> None:
    one = make_hello(name="edge-7", zone="north")
    other = make_hello(name="edge-7n", zone="orth")

    assert handshake.transcript(one, NONCE, SERVER_INSTANCE) != handshake.transcript(other, NONCE, SERVER_INSTANCE)
    assert not handshake.verify(other, NONCE, SERVER_INSTANCE, SIGNATURE)


def test_capabilities_and_software_version_are_not_signed() -> None:
    upgraded = make_hello(version="9.9.9", capabilities=["state_change.v1", "jobs.v2"])

    assert handshake.verify(upgraded, NONCE, SERVER_INSTANCE, SIGNATURE)


def test_transcript_is_independent_of_protobuf_encoding() -> None:
    reparsed = agent_pb2.Hello.FromString(HELLO.SerializeToString())

    assert handshake.transcript(reparsed, NONCE, SERVER_INSTANCE) == handshake.transcript(HELLO, NONCE, SERVER_INSTANCE)
    assert handshake.transcript(HELLO, NONCE, SERVER_INSTANCE).startswith(
        len(handshake.CONTEXT).to_bytes(4, "big") + handshake.CONTEXT
    )


@pytest.mark.parametrize(
    ("hello", "nonce", "signature"),
    [
        (make_hello(public_key=PUBLIC_KEY[:31]), NONCE, SIGNATURE),
        (make_hello(public_key=b""), NONCE, SIGNATURE),
        (HELLO, NONCE[:16], SIGNATURE),
        (HELLO, NONCE, SIGNATURE[:63]),
        (HELLO, NONCE, b""),
        (HELLO, NONCE, SIGNATURE + b"\x00"),
    ],
    ids=["short-key", "no-key", "short-nonce", "short-signature", "no-signature", "long-signature"],
)
def test_malformed_inputs_fail_verification_without_raising(
    hello: agent_pb2.Hello, nonce: bytes, signature: bytes
) -> None:
    assert handshake.verify(hello, nonce, SERVER_INSTANCE, signature) is False


@given(public_key=st.binary(min_size=32, max_size=32), signature=st.binary(max_size=80))
def test_arbitrary_key_and_signature_bytes_never_raise(public_key: bytes, signature: bytes) -> None:
    hello = make_hello(public_key=public_key)

    assert handshake.verify(hello, NONCE, SERVER_INSTANCE, signature) in (True, False)


text = st.text(max_size=40)


@given(
    instance_uid=text,
    name=text,
    zone=text,
    username=text,
    password_verifier=text,
    bound_server_instance=text,
    nonce=st.binary(min_size=32, max_size=32),
    server_instance=text,
)
def test_proof_over_any_field_values_verifies_for_exactly_those_values(
    instance_uid: str,
    name: str,
    zone: str,
    username: str,
    password_verifier: str,
    bound_server_instance: str,
    nonce: bytes,
    server_instance: str,
) -> None:
    hello = make_hello(
        instance_uid=instance_uid,
        name=name,
        zone=zone,
        username=username,
        password_verifier=password_verifier,
        bound_server_instance=bound_server_instance,
    )
    signature = handshake.sign(PRIVATE_KEY, hello, nonce, server_instance)

    assert handshake.verify(hello, nonce, server_instance, signature)
    assert not handshake.verify(hello, nonce, server_instance + "x", signature)
    altered = make_hello(
        instance_uid=instance_uid,
        name=name + "x",
        zone=zone,
        username=username,
        password_verifier=password_verifier,
        bound_server_instance=bound_server_instance,
    )
    assert not handshake.verify(altered, nonce, server_instance, signature)


# --- sealing algorithms (ADR 0020) ---------------------------------------------------------
SEALING = ["hpke-base-x25519-sha256-chacha20poly1305", "x25519-hkdf-sha256-chacha20poly1305"]
HPKE_HELLO = make_hello(sealing_algorithms=SEALING)
HPKE_SIGNATURE = handshake.sign(PRIVATE_KEY, HPKE_HELLO, NONCE, SERVER_INSTANCE)


def _parts(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def test_a_hello_without_sealing_algorithms_signs_the_transcript_older_collectors_sign() -> None:
    assert not HELLO.sealing_algorithms
    older = _parts(
        handshake.CONTEXT,
        NONCE,
        SERVER_INSTANCE.encode(),
        HELLO.instance_uid.encode(),
        HELLO.name.encode(),
        HELLO.zone.encode(),
        HELLO.username.encode(),
        HELLO.password_verifier.encode(),
        HELLO.public_key,
        HELLO.bound_server_instance.encode(),
        HELLO.protocol_version.to_bytes(4, "big"),
        HELLO.encryption_public_key,
    )
    assert handshake.transcript(HELLO, NONCE, SERVER_INSTANCE) == older


def test_the_sealing_algorithms_are_appended_as_a_named_part_of_length_prefixed_ids() -> None:
    base = handshake.transcript(HELLO, NONCE, SERVER_INSTANCE)
    ids = _parts(*(a.encode() for a in SEALING))
    assert handshake.transcript(HPKE_HELLO, NONCE, SERVER_INSTANCE) == base + _parts(b"sealing_algorithms", ids)
    assert handshake.verify(HPKE_HELLO, NONCE, SERVER_INSTANCE, HPKE_SIGNATURE)


@pytest.mark.parametrize(
    "changed",
    [
        [],
        SEALING[1:],
        SEALING[:1],
        list(reversed(SEALING)),
        [*SEALING, "x"],
        ["hpke-base-x25519-sha256-chacha20poly1305x25519", "-hkdf-sha256-chacha20poly1305"],
    ],
    ids=["stripped", "legacy-only", "hpke-only", "reordered", "added", "bytes-moved"],
)
def test_a_sealing_list_changed_in_transit_breaks_the_proof(changed: list[str]) -> None:
    assert not handshake.verify(make_hello(sealing_algorithms=changed), NONCE, SERVER_INSTANCE, HPKE_SIGNATURE)


def test_a_sealing_list_added_to_an_older_collectors_hello_breaks_its_proof() -> None:
    assert not handshake.verify(make_hello(sealing_algorithms=SEALING), NONCE, SERVER_INSTANCE, SIGNATURE)


# --- fingerprints -------------------------------------------------------------------------
FINGERPRINT_FORMAT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


@given(st.binary(min_size=32, max_size=32))
def test_fingerprint_is_sha256_in_unpadded_base64(public_key: bytes) -> None:
    fingerprint = handshake.fingerprint(public_key)

    assert FINGERPRINT_FORMAT.fullmatch(fingerprint)
    digest = base64.b64decode(fingerprint.removeprefix("SHA256:") + "=")
    assert digest == hashlib.sha256(public_key).digest()


def test_fingerprint_is_stable_for_a_key() -> None:
    assert handshake.fingerprint(PUBLIC_KEY) == handshake.fingerprint(bytes(PUBLIC_KEY))
    assert handshake.fingerprint(bytes(32)) == "SHA256:Zmh6rfhivXdsj8GLjp+OIAiXFIVu4jOzkCpZHQ1fKSU"


def test_different_keys_have_different_fingerprints() -> None:
    assert handshake.fingerprint(PUBLIC_KEY) != handshake.fingerprint(OTHER_PUBLIC_KEY)


def test_a_nonce_carries_its_issue_time_and_random_bytes() -> None:
    first, second = handshake.new_nonce(1_765_000_000_123), handshake.new_nonce(1_765_000_000_123)

    assert len(first) == handshake.NONCE_BYTES
    assert handshake.nonce_issued_at_ms(first) == 1_765_000_000_123
    assert first[:8] == second[:8] and first != second
