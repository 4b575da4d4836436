"""Sealing against fixed bytes: RFC 9180's vectors, and our own for third-party collectors.

- `tests/vectors/rfc9180_x25519_sha256_chacha20poly1305.json` (RFC 9180 A.2.1, the suite
  `outpost.sealing` writes): `cryptography`'s HPKE opens the RFC's ciphertext with its
  skRm/enc/info/aad, and the step-by-step transcription in `hpke_reference` reproduces the
  RFC's key pairs from their seeds, its key schedule and its ciphertext from skEm. The
  library's public API picks its own ephemeral key, so the encryption side is checked there.
- `tests/vectors/outpost_sealed_secrets.json`: a fixed recipient key, job run id and
  `CredentialSet` → the exact `SealedSecret` bytes, for HPKE and for the legacy algorithm;
  `outpost.sealing.open_sealed` opens both, and the ciphertexts are reproduced from the
  fixed ephemeral key (and, for the legacy algorithm, nonce). Regenerate with
  `python -m tests.unit.test_sealing_vectors` (only when the format changes on purpose).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from outpost import sealing
from outpost.agent.v1 import agent_pb2
from tests.unit import hpke_reference as ref

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
RFC = json.loads((VECTORS / "rfc9180_x25519_sha256_chacha20poly1305.json").read_text())
OWN_PATH = VECTORS / "outpost_sealed_secrets.json"


def h(value: str) -> bytes:
    return bytes.fromhex(value)


# --- RFC 9180 Appendix A.2 ----------------------------------------------------------------------
def test_the_vectors_are_for_the_suite_we_write() -> None:
    assert (RFC["mode"], RFC["kem_id"], RFC["kdf_id"], RFC["aead_id"]) == (0, 0x20, 0x01, 0x03)
    assert (ref.KEM_ID, ref.KDF_ID, ref.AEAD_ID) == (0x20, 0x01, 0x03)
    assert sealing.ENC_BYTES == len(h(RFC["enc"])) == 32


def test_cryptography_opens_the_rfc_ciphertext_with_its_recipient_key_enc_info_and_aad() -> None:
    # The public single-shot API has no aad (we use none); the RFC's encryptions carry
    # "Count-0", so the library's own aad entry point (the one its test suite uses) opens it.
    suite = sealing.HPKE_SUITE
    recipient = X25519PrivateKey.from_private_bytes(h(RFC["skRm"]))
    for encryption in RFC["encryptions"]:
        opened = rust_openssl.hpke._decrypt_with_aad(
            suite, h(RFC["enc"]) + h(encryption["ct"]), recipient, info=h(RFC["info"]), aad=h(encryption["aad"])
        )
        assert opened == h(encryption["pt"]) == b"Beauty is truth, truth beauty"


def test_the_rfc_ciphertext_does_not_open_with_another_info_or_aad() -> None:
    recipient = X25519PrivateKey.from_private_bytes(h(RFC["skRm"]))
    encryption = RFC["encryptions"][0]
    sealed = h(RFC["enc"]) + h(encryption["ct"])
    with pytest.raises(InvalidTag):
        rust_openssl.hpke._decrypt_with_aad(
            sealing.HPKE_SUITE, sealed, recipient, info=b"other", aad=h(encryption["aad"])
        )
    with pytest.raises(InvalidTag):
        sealing.HPKE_SUITE.decrypt(sealed, recipient, info=h(RFC["info"]))  # empty aad, not "Count-0"


def test_derive_key_pair_reproduces_the_rfc_keys_from_their_seeds() -> None:
    assert ref.derive_key_pair(h(RFC["ikmE"])) == (h(RFC["skEm"]), h(RFC["pkEm"]))
    assert ref.derive_key_pair(h(RFC["ikmR"])) == (h(RFC["skRm"]), h(RFC["pkRm"]))


def test_the_encryption_side_reproduces_the_rfc_key_schedule_and_ciphertext() -> None:
    context = ref.setup_base_sender(h(RFC["skEm"]), h(RFC["pkRm"]), h(RFC["info"]))
    for name in ("enc", "shared_secret", "secret", "key", "base_nonce", "exporter_secret"):
        assert getattr(context, name) == h(RFC[name]), name
    for encryption in RFC["encryptions"]:
        assert context.seal(encryption["sequence_number"], h(encryption["aad"]), h(encryption["pt"])) == h(
            encryption["ct"]
        )


def test_what_cryptography_seals_opens_in_the_transcription_and_the_other_way_round() -> None:
    # Sequence number 0 and empty aad: what `outpost.sealing` uses.
    recipient = X25519PrivateKey.from_private_bytes(h(RFC["skRm"]))
    sealed = sealing.HPKE_SUITE.encrypt(b"from the library", recipient.public_key(), info=b"job-run-7")
    assert sealing.HPKE_SUITE.decrypt(sealed, recipient, info=b"job-run-7") == b"from the library"
    context = ref.setup_base_sender(h(RFC["skEm"]), h(RFC["pkRm"]), b"job-run-7")
    written = context.enc + context.seal(0, b"", b"from the transcription")
    assert sealing.HPKE_SUITE.decrypt(written, recipient, info=b"job-run-7") == b"from the transcription"


# --- our own vectors ----------------------------------------------------------------------------
RECIPIENT_SK = bytes(range(0x40, 0x60))
HPKE_EPHEMERAL_SK = bytes(range(0x60, 0x80))
LEGACY_EPHEMERAL_SK = bytes(range(0x80, 0xA0))
LEGACY_NONCE = bytes(range(0xA0, 0xAC))
JOB_RUN_ID = "0d6a3f52-3c1e-4e0b-9a51-7f3b2c9d8e10"


def credential_set() -> agent_pb2.CredentialSet:
    return agent_pb2.CredentialSet(
        credentials=[
            agent_pb2.Credential(name="lab-v2c", snmp_v2c=agent_pb2.SnmpV2c(community="vector-community")),
            agent_pb2.Credential(name="core-ssh", ssh=agent_pb2.SshLogin(username="netops", password="vector-pass")),
        ]
    )


def legacy_ciphertext(recipient_pk: bytes, ephemeral_sk: bytes, nonce: bytes, context: str, plaintext: bytes) -> bytes:
    """ADR 0008's ECIES from a fixed ephemeral key and nonce (the parameters `outpost.sealing` documents)."""
    ephemeral_pk = ref.raw_public(ephemeral_sk)
    shared = X25519PrivateKey.from_private_bytes(ephemeral_sk).exchange(X25519PublicKey.from_public_bytes(recipient_pk))
    key = HKDF(hashes.SHA256(), 32, salt=ephemeral_pk + recipient_pk, info=b"outpost-sealed-v1").derive(shared)
    aad = b"x25519-hkdf-sha256-chacha20poly1305" + context.encode()
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def build_own_vectors() -> dict[str, Any]:
    recipient_pk = ref.raw_public(RECIPIENT_SK)
    plaintext = credential_set().SerializeToString()
    info = JOB_RUN_ID.encode()
    hpke = ref.setup_base_sender(HPKE_EPHEMERAL_SK, recipient_pk, info)
    hpke_sealed = agent_pb2.SealedSecret(
        algorithm=sealing.HPKE_ALGORITHM,
        ephemeral_public_key=hpke.enc,
        ciphertext=hpke.seal(0, b"", plaintext),
        context=JOB_RUN_ID,
    )
    legacy_sealed = agent_pb2.SealedSecret(
        algorithm=sealing.LEGACY_ALGORITHM,
        ephemeral_public_key=ref.raw_public(LEGACY_EPHEMERAL_SK),
        nonce=LEGACY_NONCE,
        ciphertext=legacy_ciphertext(recipient_pk, LEGACY_EPHEMERAL_SK, LEGACY_NONCE, JOB_RUN_ID, plaintext),
        context=JOB_RUN_ID,
    )
    common = {
        "recipient_sk": RECIPIENT_SK.hex(),
        "recipient_pk": recipient_pk.hex(),
        "context": JOB_RUN_ID,
        "plaintext": plaintext.hex(),
        "plaintext_is": "agent.v1.CredentialSet (lab-v2c: SNMPv2c community 'vector-community'; "
        "core-ssh: SSH netops / 'vector-pass'), serialized",
    }
    return {
        "source": "Outpost's own sealed-secret vectors (ADR 0020, docs/security.md). Hex bytes. "
        "sealed_secret is agent.v1.SealedSecret serialized; a collector holding recipient_sk, "
        "running job run `context`, must open it to `plaintext`. ephemeral_sk (and nonce) are given "
        "only so an implementation can reproduce the ciphertext; a real sender picks them fresh. "
        "Checked by tests/unit/test_sealing_vectors.py.",
        "vectors": [
            {
                "algorithm": sealing.HPKE_ALGORITHM,
                "construction": "RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305; "
                "info = context (UTF-8); aad empty; sequence number 0; ephemeral_public_key = enc; nonce empty",
                **common,
                "info": info.hex(),
                "ephemeral_sk": HPKE_EPHEMERAL_SK.hex(),
                "enc": hpke.enc.hex(),
                "key": hpke.key.hex(),
                "base_nonce": hpke.base_nonce.hex(),
                "ciphertext": hpke_sealed.ciphertext.hex(),
                "sealed_secret": hpke_sealed.SerializeToString().hex(),
            },
            {
                "algorithm": sealing.LEGACY_ALGORITHM,
                "construction": "X25519 ECDH(ephemeral, recipient); HKDF-SHA256(salt = ephemeral_pk || recipient_pk, "
                "info 'outpost-sealed-v1', 32 bytes); ChaCha20-Poly1305(nonce, aad = algorithm || context)",
                **common,
                "ephemeral_sk": LEGACY_EPHEMERAL_SK.hex(),
                "ephemeral_pk": legacy_sealed.ephemeral_public_key.hex(),
                "nonce": LEGACY_NONCE.hex(),
                "ciphertext": legacy_sealed.ciphertext.hex(),
                "sealed_secret": legacy_sealed.SerializeToString().hex(),
            },
        ],
    }


OWN = json.loads(OWN_PATH.read_text())
OWN_IDS = [v["algorithm"] for v in OWN["vectors"]]


def test_the_vector_file_is_what_the_documented_constructions_produce() -> None:
    assert build_own_vectors() == OWN


@pytest.mark.parametrize("vector", OWN["vectors"], ids=OWN_IDS)
def test_our_vectors_open_with_the_recipient_key_for_their_job_run(vector: dict[str, Any]) -> None:
    sealed = agent_pb2.SealedSecret.FromString(h(vector["sealed_secret"]))
    recipient = X25519PrivateKey.from_private_bytes(h(vector["recipient_sk"]))
    assert sealed.algorithm == vector["algorithm"]
    opened = sealing.open_sealed(recipient, sealed, vector["context"])
    assert opened == h(vector["plaintext"])
    assert agent_pb2.CredentialSet.FromString(opened) == credential_set()


@pytest.mark.parametrize("vector", OWN["vectors"], ids=OWN_IDS)
def test_our_vectors_do_not_open_for_another_job_run_or_key(vector: dict[str, Any]) -> None:
    sealed = agent_pb2.SealedSecret.FromString(h(vector["sealed_secret"]))
    recipient = X25519PrivateKey.from_private_bytes(h(vector["recipient_sk"]))
    with pytest.raises(sealing.SealedSecretError, match="sealed for context"):
        sealing.open_sealed(recipient, sealed, "another-job-run")
    sealed.context = "another-job-run"
    with pytest.raises(sealing.SealedSecretError, match="does not open"):
        sealing.open_sealed(recipient, sealed, "another-job-run")
    sealed.context = vector["context"]
    with pytest.raises(sealing.SealedSecretError, match="does not open"):
        sealing.open_sealed(X25519PrivateKey.from_private_bytes(b"\x33" * 32), sealed, vector["context"])


def test_the_library_seals_what_the_vectors_describe() -> None:
    # Same recipient, same context: the library's HPKE output (fresh enc) has the vector's shape and opens.
    vector = OWN["vectors"][0]
    recipient = X25519PrivateKey.from_private_bytes(h(vector["recipient_sk"]))
    sealed = sealing.seal(h(vector["recipient_pk"]), h(vector["plaintext"]), vector["context"])
    assert len(sealed.ephemeral_public_key) == len(h(vector["enc"]))
    assert len(sealed.ciphertext) == len(h(vector["ciphertext"]))
    assert not sealed.nonce
    assert sealing.open_sealed(recipient, sealed, vector["context"]) == h(vector["plaintext"])


if __name__ == "__main__":  # regenerate our own vectors (review the diff: it is a format change)
    OWN_PATH.write_text(json.dumps(build_own_vectors(), indent=2) + "\n")
    sys.stdout.write(f"wrote {OWN_PATH}\n")
