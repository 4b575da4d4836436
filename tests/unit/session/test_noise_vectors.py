"""Test vectors: the Noise construction against cacophony's, Outpost's framing against ours.

1. `tests/vectors/cacophony_noise.json`: the published vectors for
   Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s and Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s, run
   through `noise_connection()` (the one place the project builds a Noise handshake):
   every handshake and transport message byte for byte, and the handshake hash.
2. `tests/vectors/outpost_noise.json`: fixed keys, PSK, key id, transport, payloads and
   times -> the exact frames and records Outpost sends (pattern byte, prologue, key-id
   encoding, flags byte, rekey by count and by flag). A third party checks an
   implementation against it. Regenerate after a deliberate change of the format with
   `python -m tests.unit.session.test_noise_vectors --write`, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from outpost.session.noise import Initiator, RekeyPolicy, Responder, SealedChannel
from outpost.session.noise.handshake import PROTOCOL_NAMES, noise_connection, prologue

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
CACOPHONY = VECTORS / "cacophony_noise.json"
OURS = VECTORS / "outpost_noise.json"


def _cacophony() -> list[dict[str, Any]]:
    return json.loads(CACOPHONY.read_text())["vectors"]


@pytest.mark.parametrize("vector", _cacophony(), ids=lambda v: v["protocol_name"])
def test_the_noise_construction_matches_the_published_cacophony_vectors(vector):
    def h(name: str) -> bytes | None:
        return bytes.fromhex(vector[name]) if name in vector else None

    def side(prefix: str, initiator: bool):
        return noise_connection(
            vector["protocol_name"].encode(),
            initiator=initiator,
            prologue=h(f"{prefix}_prologue") or b"",
            static_private=h(f"{prefix}_static"),
            psk=bytes.fromhex(vector[f"{prefix}_psks"][0]),
            remote_static=h(f"{prefix}_remote_static"),
            ephemeral_private=h(f"{prefix}_ephemeral"),
        )

    assert vector["protocol_name"].encode() in PROTOCOL_NAMES.values()
    initiator, responder = side("init", True), side("resp", False)
    for index, message in enumerate(vector["messages"]):
        sender, receiver = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        payload, ciphertext = bytes.fromhex(message["payload"]), bytes.fromhex(message["ciphertext"])
        if not sender.handshake_finished:
            assert bytes(sender.write_message(payload)) == ciphertext, f"message {index}"
            assert bytes(receiver.read_message(ciphertext)) == payload, f"message {index}"
        else:
            assert sender.encrypt(payload) == ciphertext, f"message {index}"
            assert receiver.decrypt(ciphertext) == payload, f"message {index}"
    assert initiator.get_handshake_hash() == responder.get_handshake_hash() == h("handshake_hash")


# ---- Outpost's own vectors -----------------------------------------------------------------


def _key(label: str) -> bytes:
    """A fixed private key: SHA-256 of a label (X25519 clamps it when used)."""
    return hashlib.sha256(b"outpost noise test vector: " + label.encode()).digest()


def _public(private: bytes) -> bytes:
    return (
        X25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


POLICY = RekeyPolicy(records=3, seconds=60.0)
"""Small bounds so the vectors show both rekeys (production: 65,536 records, 600 s)."""

# (sender, envelope, now): the collector's third record rekeys by count, the server's
# record at t=70 by time (flag 0x01), each direction on its own.
RECORDS: list[tuple[str, bytes, float]] = [
    ("collector", b"hello", 0.0),
    ("server", b"welcome", 0.0),
    ("collector", b"heartbeat 1", 10.0),
    ("collector", b"heartbeat 2", 20.0),
    ("collector", b"heartbeat 3, under the rekeyed key", 30.0),
    ("server", b"job assignment, flagged: rekey after this one", 70.0),
    ("server", b"job assignment, under the rekeyed key", 71.0),
]

CASES: dict[str, dict[str, Any]] = {
    "ik_pinned": {"pinned": True, "transport": "tcp", "payloads": [b"collector payload in message 1", b""]},
    "xx_first_contact": {"pinned": False, "transport": "websocket", "payloads": [b"", b"", b"payload in message 3"]},
}


def build_vectors() -> dict[str, Any]:
    collector_static, server_static = _key("collector static"), _key("server static")
    psk = _key("access key secret")
    key_id = "ak-vector-0001"
    cases = {}
    for name, case in CASES.items():
        collector_ephemeral, server_ephemeral = _key(f"{name} collector ephemeral"), _key(f"{name} server ephemeral")
        initiator = Initiator(
            static_private=collector_static,
            access_key_id=key_id,
            psk=psk,
            transport=case["transport"],
            server_static=_public(server_static) if case["pinned"] else None,
            ephemeral_private=collector_ephemeral,
        )
        responder = Responder(
            static_private=server_static,
            transport=case["transport"],
            psk_for={key_id: psk}.get,
            ephemeral_private=server_ephemeral,
        )
        frames = []
        for index, payload in enumerate(case["payloads"]):
            sender, receiver = (initiator, responder) if index % 2 == 0 else (responder, initiator)
            frame = sender.write_message(payload)
            assert receiver.read_message(frame) == payload
            frames.append(
                {"from": "collector" if index % 2 == 0 else "server", "payload": payload.hex(), "frame": frame.hex()}
            )
        ends: dict[str, SealedChannel] = {
            "collector": initiator.channel(0.0, policy=POLICY),
            "server": responder.channel(0.0, policy=POLICY),
        }
        assert ends["collector"].handshake_hash == ends["server"].handshake_hash
        records = []
        for sender_name, envelope, now in RECORDS:
            receiver_name = "server" if sender_name == "collector" else "collector"
            [record] = ends[sender_name].seal(envelope, now)
            assert ends[receiver_name].open(record) == envelope
            records.append({"from": sender_name, "now": now, "envelope": envelope.hex(), "record": record.hex()})
        assert initiator.pattern is not None
        cases[name] = {
            "protocol_name": PROTOCOL_NAMES[initiator.pattern].decode(),
            "transport": case["transport"],
            "prologue": prologue(case["transport"]).hex(),
            "collector_ephemeral_private": collector_ephemeral.hex(),
            "server_ephemeral_private": server_ephemeral.hex(),
            "collector_pins_server_static": case["pinned"],
            "handshake_frames": frames,
            "handshake_hash": ends["collector"].handshake_hash.hex(),
            "records": records,
        }
    return {
        "description": (
            "Outpost sealed-session vectors (docs/adr/0019-sealed-sessions-noise.md). Handshake frames: the "
            "collector's first frame is a pattern byte (01 IK, 02 XX) then Noise message 1, whose payload is "
            "a length byte, the access-key id in ASCII, then the payload given here. Records: Noise transport "
            "messages over (flags byte || envelope); flags 01 = the sender rekeys after this record, 02 = more "
            "fragments follow. Both ends also rekey after every rekey_every_records records of a direction. "
            "Private keys are raw X25519 scalars (clamped when used)."
        ),
        "generated_by": "python -m tests.unit.session.test_noise_vectors --write",
        "collector_static_private": collector_static.hex(),
        "collector_static_public": _public(collector_static).hex(),
        "server_static_private": server_static.hex(),
        "server_static_public": _public(server_static).hex(),
        "psk": psk.hex(),
        "access_key_id": key_id,
        "rekey_every_records": POLICY.records,
        "rekey_after_seconds": POLICY.seconds,
        "cases": cases,
    }


def test_outpost_framing_matches_its_committed_vectors():
    assert json.loads(OURS.read_text()) == build_vectors()


def test_outpost_vectors_open_with_a_plain_noise_connection():
    """A third party's view: only noise_connection(), the prologue and the framing from the description."""
    data = json.loads(OURS.read_text())
    case = data["cases"]["ik_pinned"]
    server = noise_connection(
        case["protocol_name"].encode(),
        initiator=False,
        prologue=bytes.fromhex(case["prologue"]),
        static_private=bytes.fromhex(data["server_static_private"]),
        psk=bytes.fromhex(data["psk"]),
        ephemeral_private=bytes.fromhex(case["server_ephemeral_private"]),
    )
    first, second = (bytes.fromhex(frame["frame"]) for frame in case["handshake_frames"])
    assert first[0] == 1  # IK
    payload = bytes(server.read_message(first[1:]))
    assert payload[1 : 1 + payload[0]].decode() == data["access_key_id"]
    assert payload[1 + payload[0] :].hex() == case["handshake_frames"][0]["payload"]
    assert bytes(server.write_message(b"")) == second
    hello = case["records"][0]
    assert server.decrypt(bytes.fromhex(hello["record"])) == b"\x00" + bytes.fromhex(hello["envelope"])


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    OURS.write_text(json.dumps(build_vectors(), indent=1) + "\n")
    print(f"wrote {OURS}")
