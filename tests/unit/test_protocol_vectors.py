"""docs/protocol.md's test vectors, checked twice so the document cannot drift from the code.

`tests/vectors/handshake_transcript.json` holds fixed keys, nonces and hello fields with
the exact transcript bytes and Ed25519 signatures; a verifier input with its argon2id PHC
string under a fixed salt; and known envelopes with their TCP frames. Each is checked

- against the project's code (`outpost.session.handshake`, `outpost.registration`, the
  collector's argon2id parameters, the registry's verifier rules, `outpost.session.codec`);
- against `tests/conformance/minimal_collector.py`, written from the document alone (it
  imports none of the project's packages), so the document says enough to derive them.

Regenerate after a deliberate format change (and change docs/protocol.md with it):
`python -m tests.unit.test_protocol_vectors --write`.
"""

from __future__ import annotations

import hmac
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf import json_format

from outpost import password_proof, sealing
from outpost.agent.v1 import agent_pb2
from outpost.password_proof import PasswordParameters
from outpost.registration import verifier_input
from outpost.session import codec, handshake
from services.collector.domain import credentials as collector_credentials
from services.registry.domain.verifier import credentials_match, verifier_problem
from tests.conformance import minimal_collector as minimal

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "handshake_transcript.json"
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BYTES_FIELDS = ("public_key", "encryption_public_key")


def load() -> dict[str, Any]:
    return json.loads(VECTORS.read_text())


def hello_from(fields: dict[str, Any]) -> agent_pb2.Hello:
    values = {k: v for k, v in fields.items() if not k.endswith("_hex")}
    values.update({k[: -len("_hex")]: bytes.fromhex(v) for k, v in fields.items() if k.endswith("_hex")})
    return agent_pb2.Hello(**values)


def plain_hello(fields: dict[str, Any]) -> dict[str, Any]:
    """The vector's hello as the minimal collector takes it: field name -> value."""
    values = {k: v for k, v in fields.items() if not k.endswith("_hex")}
    values.update({k[: -len("_hex")]: bytes.fromhex(v) for k, v in fields.items() if k.endswith("_hex")})
    return values


VECTOR_DATA = load() if VECTORS.exists() else {"handshake": [], "verifier": {}, "frames": []}
HANDSHAKES = VECTOR_DATA["handshake"]
FRAMES = VECTOR_DATA["frames"]
PASSWORD_PROOFS = VECTOR_DATA.get("password_proof", [])


# --- the project's code ------------------------------------------------------------------------
@pytest.mark.parametrize("vector", HANDSHAKES, ids=[v["name"] for v in HANDSHAKES])
def test_the_projects_transcript_and_signature_match_the_vector(vector: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["identity_private_key_hex"]))
    hello = hello_from(vector["hello"])
    nonce = bytes.fromhex(vector["nonce_hex"])
    assert hello.public_key == minimal.raw_key(key)
    assert handshake.transcript(hello, nonce, vector["server_instance"]).hex() == vector["transcript_hex"]
    signature = handshake.sign(key, hello, nonce, vector["server_instance"])
    assert signature.hex() == vector["signature_hex"]
    assert handshake.verify(hello, nonce, vector["server_instance"], signature)
    assert handshake.nonce_issued_at_ms(nonce) == vector["nonce_issued_at_unix_ms"]
    assert handshake.fingerprint(hello.public_key) == vector["fingerprint"]
    encryption = X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["encryption_private_key_hex"]))
    assert sealing.public_key_bytes(encryption) == hello.encryption_public_key


@pytest.mark.parametrize("vector", HANDSHAKES, ids=[v["name"] for v in HANDSHAKES])
def test_a_hello_changed_after_signing_fails_the_projects_verification(vector: dict[str, Any]) -> None:
    hello = hello_from(vector["hello"])
    hello.zone = hello.zone + "x"
    nonce = bytes.fromhex(vector["nonce_hex"])
    assert not handshake.verify(hello, nonce, vector["server_instance"], bytes.fromhex(vector["signature_hex"]))


def test_the_projects_verifier_matches_the_vector() -> None:
    vector = VECTOR_DATA["verifier"]
    public_key = bytes.fromhex(vector["public_key_hex"])
    data = verifier_input(username=vector["username"], public_key=public_key, password=vector["password"])
    assert data.hex() == vector["verifier_input_hex"]
    hasher = PasswordHasher(
        time_cost=collector_credentials.TIME_COST,
        memory_cost=collector_credentials.MEMORY_COST_KIB,
        parallelism=collector_credentials.PARALLELISM,
    )
    assert (vector["time_cost"], vector["memory_cost_kib"], vector["parallelism"]) == (
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
    )
    assert hasher.hash(data, salt=bytes.fromhex(vector["salt_hex"])) == vector["phc"]
    assert verifier_problem(vector["phc"]) is None
    assert credentials_match(
        stored_username=vector["username"],
        verifier=vector["phc"],
        public_key=public_key,
        username=vector["username"],
        password=vector["password"],
    )
    other_key = bytes(32)
    assert not credentials_match(
        stored_username=vector["username"],
        verifier=vector["phc"],
        public_key=other_key,
        username=vector["username"],
        password=vector["password"],
    )


def vector_parameters(vector: dict[str, Any]) -> PasswordParameters:
    p = vector["parameters"]
    return PasswordParameters(
        bytes.fromhex(p["salt_hex"]),
        p["memory_kib"],
        p["time_cost"],
        p["parallelism"],
        bytes.fromhex(p["public_key_hex"]),
    )


def vector_transcript(vector: dict[str, Any]) -> bytes:
    source = next(h for h in HANDSHAKES if h["name"] == vector["handshake"])
    return handshake.transcript(
        hello_from(source["hello"]),
        bytes.fromhex(source["nonce_hex"]),
        source["server_instance"],
        bytes.fromhex(vector["handshake_hash_hex"]),
    )


@pytest.mark.parametrize("vector", PASSWORD_PROOFS, ids=[v["name"] for v in PASSWORD_PROOFS])
def test_the_projects_password_proof_matches_the_vector(vector: dict[str, Any]) -> None:
    params = vector_parameters(vector)
    transcript = vector_transcript(vector)
    assert transcript.hex() == vector["transcript_hex"]
    salted = password_proof.salted_password(vector["password"], username=vector["username"], params=params)
    assert salted.hex() == vector["salted_password_hex"]
    assert password_proof.client_key(salted).hex() == vector["client_key_hex"]
    assert password_proof.stored_key(salted).hex() == vector["stored_key_hex"]
    message = password_proof.auth_message(transcript, params)
    assert message.hex() == vector["auth_message_hex"]
    proof = password_proof.client_proof(salted, message)
    assert proof.hex() == vector["client_proof_hex"]
    assert password_proof.proof_matches(bytes.fromhex(vector["stored_key_hex"]), message, proof)


def test_the_hello_verifier_converts_to_the_vectors_stored_key() -> None:
    """The hash of the verifier a collector sends is SaltedPassword (ADR 0025)."""
    vector = PASSWORD_PROOFS[0]
    source = next(h for h in HANDSHAKES if h["name"] == vector["handshake"])
    converted = password_proof.from_phc(source["hello"]["password_verifier"])
    assert converted is not None
    assert converted.stored_key.hex() == vector["stored_key_hex"]
    assert converted.salt.hex() == vector["parameters"]["salt_hex"]


@pytest.mark.parametrize("vector", FRAMES, ids=[v["name"] for v in FRAMES])
def test_the_projects_codec_frames_the_vector_envelope(vector: dict[str, Any]) -> None:
    cls = agent_pb2.CollectorMessage if vector["direction"] == "collector_to_server" else agent_pb2.ServerMessage
    message = json_format.ParseDict(vector["envelope"], cls())
    payload = message.SerializeToString(deterministic=True)
    assert payload.hex() == vector["payload_hex"]
    assert codec.encode_frame(payload).hex() == vector["frame_hex"]
    assert codec.FrameDecoder().feed(bytes.fromhex(vector["frame_hex"])) == [payload]


# --- an independent implementation, from the document -----------------------------------------
@pytest.mark.parametrize("vector", HANDSHAKES, ids=[v["name"] for v in HANDSHAKES])
def test_the_document_derives_the_same_transcript_and_signature(vector: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["identity_private_key_hex"]))
    data = minimal.handshake_transcript(
        plain_hello(vector["hello"]), bytes.fromhex(vector["nonce_hex"]), vector["server_instance"]
    )
    assert data.hex() == vector["transcript_hex"]
    assert key.sign(data).hex() == vector["signature_hex"]  # Ed25519 is deterministic (RFC 8032)
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector["hello"]["public_key_hex"])).verify(
        bytes.fromhex(vector["signature_hex"]), data
    )
    assert minimal.fingerprint(bytes.fromhex(vector["hello"]["public_key_hex"])) == vector["fingerprint"]


def test_the_document_derives_the_same_verifier() -> None:
    vector = VECTOR_DATA["verifier"]
    public_key = bytes.fromhex(vector["public_key_hex"])
    assert (
        minimal.verifier_input(vector["username"], public_key, vector["password"]).hex() == vector["verifier_input_hex"]
    )
    phc = minimal.password_verifier(
        vector["username"], public_key, vector["password"], salt=bytes.fromhex(vector["salt_hex"])
    )
    assert phc == vector["phc"]


@pytest.mark.parametrize("vector", PASSWORD_PROOFS, ids=[v["name"] for v in PASSWORD_PROOFS])
def test_the_document_derives_the_same_password_proof(vector: dict[str, Any]) -> None:
    pb = minimal.agent_messages()
    p = vector["parameters"]
    params = pb.PasswordParameters(
        salt=bytes.fromhex(p["salt_hex"]),
        memory_kib=p["memory_kib"],
        time_cost=p["time_cost"],
        parallelism=p["parallelism"],
        public_key=bytes.fromhex(p["public_key_hex"]),
    )
    source = next(h for h in HANDSHAKES if h["name"] == vector["handshake"])
    transcript = minimal.handshake_transcript(
        plain_hello(source["hello"]),
        bytes.fromhex(source["nonce_hex"]),
        source["server_instance"],
        bytes.fromhex(vector["handshake_hash_hex"]),
    )
    assert transcript.hex() == vector["transcript_hex"]
    salted = minimal.salted_password(vector["username"], vector["password"], params)
    assert salted.hex() == vector["salted_password_hex"]
    message = minimal.password_auth_message(transcript, params)
    assert message.hex() == vector["auth_message_hex"]
    assert minimal.password_client_proof(salted, message).hex() == vector["client_proof_hex"]


def test_the_document_quotes_the_password_proof_vector() -> None:
    text = DOCUMENT.read_text()
    vector = PASSWORD_PROOFS[0]
    for key in ("salted_password_hex", "stored_key_hex", "client_proof_hex"):
        assert vector[key] in text, key


@pytest.mark.parametrize("vector", FRAMES, ids=[v["name"] for v in FRAMES])
def test_the_document_derives_the_same_frame(vector: dict[str, Any]) -> None:
    pb = minimal.agent_messages()
    cls = pb.CollectorMessage if vector["direction"] == "collector_to_server" else pb.ServerMessage
    payload = json_format.ParseDict(vector["envelope"], cls()).SerializeToString(deterministic=True)
    assert payload.hex() == vector["payload_hex"]
    assert minimal.tcp_frame(payload).hex() == vector["frame_hex"]


# --- the document quotes the vectors ---------------------------------------------------------
def annotated_transcript(text: str, marker: str) -> list[tuple[str, str]]:
    """The `length part` hex lines of the fenced block after `<!-- transcript: marker -->`."""
    after = text.split(f"<!-- transcript: {marker} -->", 1)[1]
    block = after.split("```text\n", 1)[1].split("```", 1)[0]
    return [(line.split()[0], line.split()[1] if len(line.split()) > 1 else "") for line in block.splitlines()]


def test_the_documents_annotated_transcript_is_the_vectors() -> None:
    text = DOCUMENT.read_text()
    vector = HANDSHAKES[1]
    lines = annotated_transcript(text, "handshake[1]")
    for length, part in lines:
        assert int(length, 16) == len(bytes.fromhex(part)), (length, part)
    assert "".join(length + part for length, part in lines) == vector["transcript_hex"]
    assert vector["signature_hex"] in text


def test_the_document_quotes_the_verifier_and_a_frame() -> None:
    text = DOCUMENT.read_text()
    assert VECTOR_DATA["verifier"]["phc"] in text
    heartbeat = next(f for f in FRAMES if f["name"] == "heartbeat")
    assert heartbeat["frame_hex"][:8] in text
    assert heartbeat["payload_hex"] in text


# --- generating the file -----------------------------------------------------------------------
def _handshake_vector(
    name: str, seed: int, nonce_time_ms: int, server_instance: str, hello_fields: dict[str, Any]
) -> dict[str, Any]:
    identity = bytes(range(seed, seed + 32))
    encryption = bytes(range(seed + 64, seed + 96))
    key = Ed25519PrivateKey.from_private_bytes(identity)
    public_key = minimal.raw_key(key)
    encryption_public = minimal.raw_key(X25519PrivateKey.from_private_bytes(encryption))
    nonce = nonce_time_ms.to_bytes(8, "big") + bytes(range(0xA0, 0xA0 + 24))
    username, password = hello_fields.pop("username"), hello_fields.pop("password")
    salt = bytes(range(seed + 128, seed + 144))
    fields = {
        "protocol_version": 1,
        **hello_fields,
        "username": username,
        "password_verifier": PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(
            verifier_input(username=username, public_key=public_key, password=password), salt=salt
        ),
        "public_key": public_key,
        "encryption_public_key": encryption_public,
    }
    hello = agent_pb2.Hello(**fields)
    stored = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in fields.items()}
    stored = {(f"{k}_hex" if k in BYTES_FIELDS else k): v for k, v in stored.items()}
    return {
        "name": name,
        "identity_private_key_hex": identity.hex(),
        "encryption_private_key_hex": encryption.hex(),
        "nonce_hex": nonce.hex(),
        "nonce_issued_at_unix_ms": nonce_time_ms,
        "server_instance": server_instance,
        "hello": stored,
        "transcript_hex": handshake.transcript(hello, nonce, server_instance).hex(),
        "signature_hex": handshake.sign(key, hello, nonce, server_instance).hex(),
        "fingerprint": handshake.fingerprint(public_key),
    }


def generate() -> dict[str, Any]:
    server_instance = "5f0c7a52-3d1e-4b8a-9c6f-2e7d81a4b093"
    first = _handshake_vector(
        "first_contact_without_sealing_algorithms",
        0x00,
        1_796_601_600_000,
        server_instance,
        {
            "instance_uid": "3b0e6c1f9a2d4e57b8c9d0e1f2a3b4c5",
            "name": "edge-7",
            "zone": "lab",
            "version": "0.1.0",
            "capabilities": ["state_change.v1"],
            "username": "svc-outpost",
            "password": "correct horse battery staple",
        },
    )
    bound = _handshake_vector(
        "bound_with_sealing_algorithms_and_utf8",
        0x20,
        1_796_601_660_123,
        server_instance,
        {
            "instance_uid": "c4b3a2f1e0d9c8b7a6574e3d2c1b0a9f",
            "name": "außenstelle-3",
            "zone": "zürich",
            "version": "0.1.0",
            "capabilities": ["state_change.v1"],
            "bound_server_instance": server_instance,
            "sealing_algorithms": list(sealing.OPENS),
            "username": "svc-outpost",
            "password": "another install-time password",
        },
    )
    verifier_key = minimal.raw_key(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    salt = b"outpost-salt-016"
    username, password = "svc-outpost", "correct horse battery staple"
    data = verifier_input(username=username, public_key=verifier_key, password=password)
    verifier = {
        "username": username,
        "public_key_hex": verifier_key.hex(),
        "password": password,
        "verifier_input_hex": data.hex(),
        "salt_hex": salt.hex(),
        "time_cost": 2,
        "memory_cost_kib": 19456,
        "parallelism": 1,
        "hash_len": 32,
        "phc": PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(data, salt=salt),
    }
    password_proofs = [
        _password_proof_vector(
            "unsealed_current_converted_from_the_hello_verifier",
            first,
            b"",
            "svc-outpost",
            "correct horse battery staple",
            # The salt and costs of handshake[0]'s hello verifier: its hash is SaltedPassword.
            PasswordParameters(bytes(range(0x80, 0x90)), 19456, 2, 1, bytes.fromhex(first["hello"]["public_key_hex"])),
        ),
        _password_proof_vector(
            "sealed_previous_bound_to_an_older_key",
            bound,
            bytes(range(0x40, 0x60)),  # the sealed session's Noise handshake hash
            "svc-outpost",
            "another install-time password",
            PasswordParameters(b"rotated-salt-016", 1024, 1, 1, bytes(range(0xE0, 0x100))),
        ),
    ]
    envelopes: list[tuple[str, str, Any]] = [
        (
            "heartbeat",
            "collector_to_server",
            agent_pb2.CollectorMessage(
                sequence=3,
                sent_at_unix_ms=1_796_601_600_500,
                heartbeat=agent_pb2.Heartbeat(
                    spool=agent_pb2.SpoolStatus(batches=2, bytes=1400, max_bytes=268435456),
                    running_job_run_ids=["run-1"],
                ),
            ),
        ),
        (
            "challenge",
            "server_to_collector",
            agent_pb2.ServerMessage(
                sequence=1,
                sent_at_unix_ms=1_796_601_600_001,
                challenge=agent_pb2.Challenge(nonce=bytes.fromhex(first["nonce_hex"]), server_instance=server_instance),
            ),
        ),
        (
            "batch_ack",
            "server_to_collector",
            agent_pb2.ServerMessage(
                sequence=9, batch_ack=agent_pb2.BatchAck(job_run_id="run-1", sequence=4, attempt=1)
            ),
        ),
    ]
    frames = []
    for name, direction, message in envelopes:
        payload = message.SerializeToString(deterministic=True)
        frames.append(
            {
                "name": name,
                "direction": direction,
                "envelope": json_format.MessageToDict(message),
                "payload_hex": payload.hex(),
                "frame_hex": codec.encode_frame(payload).hex(),
            }
        )
    return {
        "description": (
            "docs/protocol.md test vectors: handshake transcripts and Ed25519 signatures, the argon2id "
            "verifier, the service-password SCRAM proof, TCP frames. Checked by tests/unit/test_protocol_vectors.py."
        ),
        "handshake": [first, bound],
        "verifier": verifier,
        "password_proof": password_proofs,
        "frames": frames,
    }


def _password_proof_vector(
    name: str,
    handshake_vector: dict[str, Any],
    channel_binding: bytes,
    username: str,
    password: str,
    params: PasswordParameters,
) -> dict[str, Any]:
    """One SCRAM proof (docs/protocol.md §4.4) over a handshake vector's transcript."""
    hello = hello_from(handshake_vector["hello"])
    nonce = bytes.fromhex(handshake_vector["nonce_hex"])
    transcript = handshake.transcript(hello, nonce, handshake_vector["server_instance"], channel_binding)
    salted = password_proof.salted_password(password, username=username, params=params)
    message = password_proof.auth_message(transcript, params)
    client_key = password_proof.client_key(salted)
    stored = password_proof.stored_key(salted)
    return {
        "name": name,
        "handshake": handshake_vector["name"],
        "handshake_hash_hex": channel_binding.hex(),
        "username": username,
        "password": password,
        "parameters": {
            "salt_hex": params.salt.hex(),
            "memory_kib": params.memory_kib,
            "time_cost": params.time_cost,
            "parallelism": params.parallelism,
            "public_key_hex": params.public_key.hex(),
        },
        "transcript_hex": transcript.hex(),
        "salted_password_hex": salted.hex(),
        "client_key_hex": client_key.hex(),
        "stored_key_hex": stored.hex(),
        "auth_message_hex": message.hex(),
        "client_signature_hex": hmac.digest(stored, message, "sha256").hex(),
        "client_proof_hex": password_proof.client_proof(salted, message).hex(),
    }


if __name__ == "__main__":
    if "--write" in sys.argv:
        VECTORS.write_text(json.dumps(generate(), indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {VECTORS}")
    else:
        print(json.dumps(generate(), indent=2, ensure_ascii=False))
