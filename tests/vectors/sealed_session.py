"""Generate `sealed_session.json`: docs/protocol.md's sealed-session vectors, from the project's code.

Fixed keys -> an access key's text form, an IK session over TCP as it is on the wire
(message 1 with the key id, the gateway's typed reply `0x01 || message 2`, the first
records: the collector's Hello, the gateway's Challenge), an envelope cut into MORE
fragments, a record flagged REKEY after 600 s and the record after it under the new key,
an XX first contact (`0x01 || message 2`, then the bare message 3), and a refusal
(`0x00 || Disconnect`). Every frame is also given with the TCP length prefix.

`tests/unit/test_sealed_session_vectors.py` checks the committed file against this
generator (the project's code), against `tests/conformance/minimal_collector.py` (written
from the document), and the document's annotated examples against the file.

Regenerate after a deliberate change of the format (and change docs/protocol.md with it):

    python -m tests.vectors.sealed_session --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf import json_format
from google.protobuf.message import Message

from outpost.access_key import AccessKey
from outpost.agent.v1 import agent_pb2
from outpost.session import codec, handshake
from outpost.session.noise import Initiator, Responder, SealedChannel
from outpost.session.noise.handshake import PROTOCOL_NAMES, Pattern, prologue

VECTORS = Path(__file__).resolve().parent / "sealed_session.json"
KEY_ID = "ak_5e41ed0001"
REFUSED = 18  # DISCONNECT_REASON_ACCESS_KEY_REFUSED
FRAGMENTED_ENVELOPE_BYTES = 70_000
"""Above one record's 65,518-byte fragment: two records, the first flagged MORE."""


def key(label: str) -> bytes:
    """A fixed 32-byte key: SHA-256 of a label (X25519 clamps it when used; Ed25519 takes it as the seed)."""
    return hashlib.sha256(b"outpost sealed-session vector: " + label.encode()).digest()


def x25519_public(private: bytes) -> bytes:
    return (
        X25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def ed25519_public(private: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def fragmented_envelope() -> bytes:
    """70,000 bytes where byte i is i mod 251: the record layer carries any bytes alike."""
    return bytes(i % 251 for i in range(FRAGMENTED_ENVELOPE_BYTES))


def tcp(frame: bytes) -> str:
    return codec.encode_frame(frame).hex()


def envelope_vector(message: Message) -> dict[str, Any]:
    return {"envelope": json_format.MessageToDict(message), "envelope_hex": message.SerializeToString().hex()}


def sealed_records(channel: SealedChannel, peer: SealedChannel, envelope: bytes, now: float) -> list[dict[str, Any]]:
    """The records of one envelope with their plaintext flags and fragment sizes (known to the sender)."""
    before = channel.rekeys_sent
    records = channel.seal(envelope, now)
    rekeyed = channel.rekeys_sent > before
    out = []
    offset = 0
    for index, record in enumerate(records):
        last = index == len(records) - 1
        fragment = len(record) - 17
        flags = (0x02 if not last else 0) | (0x01 if last and rekeyed else 0)
        opened = peer.open(record)
        assert (opened == envelope) if last else (opened is None)
        entry: dict[str, Any] = {"flags": flags, "fragment_bytes": fragment, "record_bytes": len(record)}
        if len(record) > 1024:  # keep the file small: a digest and the head of large records
            entry["record_sha256"] = hashlib.sha256(record).hexdigest()
            entry["record_head_hex"] = record[:32].hex()
        else:
            entry["record_hex"] = record.hex()
            entry["tcp_hex"] = tcp(record)
        out.append(entry)
        offset += fragment
    assert offset == len(envelope)
    return out


def hello_message() -> agent_pb2.CollectorMessage:
    identity = key("collector identity (Ed25519)")
    return agent_pb2.CollectorMessage(
        sequence=1,
        sent_at_unix_ms=1_796_601_600_000,
        hello=agent_pb2.Hello(
            protocol_version=1,
            capabilities=["state_change.v1"],
            instance_uid="9d3c1a0b7e6f45a2b8c4d5e6f7a8b9c0",
            name="edge-sealed-1",
            zone="lab",
            version="0.1.0",
            public_key=ed25519_public(identity),
            username="svc-outpost",
            password_verifier="$argon2id$v=19$m=19456,t=2,p=1$b3V0cG9zdC1zYWx0LTAxNg$NX05tvtE8AsCnLjFoUsSLTXpXriFVEre0w1K1bVG6o4",
            encryption_public_key=x25519_public(key("collector encryption (X25519)")),
        ),
    )


def challenge_message() -> agent_pb2.ServerMessage:
    nonce = (1_796_601_600_010).to_bytes(8, "big") + bytes(range(0xC0, 0xC0 + 24))
    return agent_pb2.ServerMessage(
        sequence=1,
        sent_at_unix_ms=1_796_601_600_010,
        challenge=agent_pb2.Challenge(nonce=nonce, server_instance="5f0c7a52-3d1e-4b8a-9c6f-2e7d81a4b093"),
    )


def channel_binding(hello: agent_pb2.Hello, challenge: agent_pb2.Challenge, handshake_hash: bytes) -> dict[str, Any]:
    """The Proof of a sealed session: the §4.3 transcript plus the Noise handshake hash, signed."""
    identity = Ed25519PrivateKey.from_private_bytes(key("collector identity (Ed25519)"))
    data = handshake.transcript(hello, challenge.nonce, challenge.server_instance, handshake_hash)
    signature = handshake.sign(identity, hello, challenge.nonce, challenge.server_instance, handshake_hash)
    assert handshake.verify(hello, challenge.nonce, challenge.server_instance, signature, handshake_hash)
    assert not handshake.verify(hello, challenge.nonce, challenge.server_instance, signature)  # unbound: refused
    return {
        "identity_private_key_hex": key("collector identity (Ed25519)").hex(),
        "transcript_hex": data.hex(),
        "unbound_transcript_hex": handshake.transcript(hello, challenge.nonce, challenge.server_instance).hex(),
        "signature_hex": signature.hex(),
    }


def heartbeat_message(sequence: int, at_ms: int) -> agent_pb2.CollectorMessage:
    return agent_pb2.CollectorMessage(sequence=sequence, sent_at_unix_ms=at_ms, heartbeat=agent_pb2.Heartbeat())


def ik_session(collector_static: bytes, server_static: bytes, psk: bytes) -> dict[str, Any]:
    collector_ephemeral, server_ephemeral = key("ik collector ephemeral"), key("ik server ephemeral")
    initiator = Initiator(
        static_private=collector_static,
        access_key_id=KEY_ID,
        psk=psk,
        transport="tcp",
        server_static=x25519_public(server_static),
        ephemeral_private=collector_ephemeral,
    )
    responder = Responder(
        static_private=server_static, transport="tcp", psk_for={KEY_ID: psk}.get, ephemeral_private=server_ephemeral
    )
    message_1 = initiator.write_message()
    assert responder.read_message(message_1) == b""
    message_2 = responder.write_message()
    assert initiator.read_message(message_2) == b""
    reply = bytes([0x01]) + message_2
    assert initiator.pattern is Pattern.IK
    collector, gateway = initiator.channel(0.0), responder.channel(0.0)
    assert collector.handshake_hash == gateway.handshake_hash
    hello, challenge = hello_message(), challenge_message()
    binding = channel_binding(hello.hello, challenge.challenge, collector.handshake_hash)
    proof = agent_pb2.CollectorMessage(
        sequence=2,
        sent_at_unix_ms=1_796_601_600_020,
        proof=agent_pb2.Proof(signature=bytes.fromhex(binding["signature_hex"])),
    )
    before_rekey = heartbeat_message(3, 1_796_601_600_000 + 600_000)
    after_rekey = heartbeat_message(4, 1_796_601_600_000 + 630_000)
    # (sender, now, what, envelope): each sealed by the sender and opened by its peer, in order.
    steps: list[tuple[str, float, str, Message | bytes]] = [
        ("collector", 0.0, "the Hello: the first record", hello),
        ("server", 0.0, "the Challenge", challenge),
        ("collector", 0.0, "the Proof: Ed25519 over the channel-bound transcript", proof),
        (
            "collector",
            1.0,
            f"{FRAGMENTED_ENVELOPE_BYTES} bytes, byte i = i mod 251: two records, the first flagged MORE",
            fragmented_envelope(),
        ),
        ("collector", 600.0, "600 s after the handshake: flagged REKEY", before_rekey),
        ("collector", 630.0, "the next record, under the rekeyed key", after_rekey),
    ]
    ends = {"collector": (collector, gateway), "server": (gateway, collector)}
    records = []
    for sender, now, what, envelope in steps:
        data = envelope if isinstance(envelope, bytes) else envelope.SerializeToString()
        described = (
            {"envelope_bytes": len(data), "envelope_sha256": hashlib.sha256(data).hexdigest()}
            if isinstance(envelope, bytes)
            else envelope_vector(envelope)
        )
        entry = {"from": sender, "now": now, "what": what, **described}
        records.append({**entry, "records": sealed_records(*ends[sender], data, now)})
    assert gateway.rekeys_received == 1
    return {
        "protocol_name": PROTOCOL_NAMES[Pattern.IK].decode(),
        "transport": "tcp",
        "prologue_hex": prologue("tcp").hex(),
        "collector_ephemeral_private_hex": collector_ephemeral.hex(),
        "server_ephemeral_private_hex": server_ephemeral.hex(),
        "message_1": {
            "pattern_byte": message_1[0],
            "payload_hex": (bytes([len(KEY_ID)]) + KEY_ID.encode()).hex(),
            "frame_hex": message_1.hex(),
            "tcp_hex": tcp(message_1),
        },
        "message_2": {
            "noise_message_hex": message_2.hex(),
            "frame_hex": reply.hex(),
            "tcp_hex": tcp(reply),
        },
        "handshake_hash_hex": collector.handshake_hash.hex(),
        "channel_binding": binding,
        "envelopes": records,
    }


def xx_session(collector_static: bytes, server_static: bytes, psk: bytes) -> dict[str, Any]:
    collector_ephemeral, server_ephemeral = key("xx collector ephemeral"), key("xx server ephemeral")
    initiator = Initiator(
        static_private=collector_static,
        access_key_id=KEY_ID,
        psk=psk,
        transport="poll",
        ephemeral_private=collector_ephemeral,
    )
    responder = Responder(
        static_private=server_static, transport="poll", psk_for={KEY_ID: psk}.get, ephemeral_private=server_ephemeral
    )
    message_1 = initiator.write_message()
    responder.read_message(message_1)
    message_2 = responder.write_message()
    initiator.read_message(message_2)
    message_3 = initiator.write_message()
    responder.read_message(message_3)
    assert initiator.pattern is Pattern.XX
    collector, gateway = initiator.channel(0.0), responder.channel(0.0)
    assert initiator.remote_static == x25519_public(server_static)
    hello = hello_message()
    hello_records = sealed_records(collector, gateway, hello.SerializeToString(), 0.0)
    assert not collector.peer_confirmed  # XX: the server's key is not to be pinned yet
    challenge_records = sealed_records(gateway, collector, challenge_message().SerializeToString(), 0.0)
    assert collector.peer_confirmed
    return {
        "protocol_name": PROTOCOL_NAMES[Pattern.XX].decode(),
        "transport": "poll",
        "prologue_hex": prologue("poll").hex(),
        "collector_ephemeral_private_hex": collector_ephemeral.hex(),
        "server_ephemeral_private_hex": server_ephemeral.hex(),
        "message_1": {"pattern_byte": message_1[0], "frame_hex": message_1.hex()},
        "message_2": {"noise_message_hex": message_2.hex(), "frame_hex": (b"\x01" + message_2).hex()},
        "message_3": {"frame_hex": message_3.hex()},
        "handshake_hash_hex": collector.handshake_hash.hex(),
        "hello_record_hex": hello_records[0]["record_hex"],
        "challenge_record_hex": challenge_records[0]["record_hex"],
    }


def refusal() -> dict[str, Any]:
    disconnect = agent_pb2.Disconnect(
        reason=REFUSED,  # type: ignore[arg-type]
        message="no valid access key has the id 'ak_unknown' (revoked or expired?)",
        retry=True,
    )
    frame = b"\x00" + disconnect.SerializeToString()
    return {
        "disconnect": {"reason": REFUSED, "message": disconnect.message, "retry": True},
        "frame_hex": frame.hex(),
        "tcp_hex": tcp(frame),
    }


def generate() -> dict[str, Any]:
    collector_static, server_static = key("collector static (X25519)"), key("server static (X25519)")
    psk = key("access key secret")
    access_key = AccessKey(key_id=KEY_ID, secret=psk, server_public_key=x25519_public(server_static))
    first_contact_key = AccessKey(key_id=KEY_ID, secret=psk)
    return {
        "description": (
            "docs/protocol.md §12 sealed-session vectors. Generated by the project's code; checked by "
            "tests/unit/test_sealed_session_vectors.py against the code, the minimal collector and the document."
        ),
        "generated_by": "python -m tests.vectors.sealed_session --write",
        "access_key": {
            "text": access_key.encode(),
            "text_without_server_key": first_contact_key.encode(),
            "key_id": KEY_ID,
            "secret_hex": psk.hex(),
            "server_public_key_hex": x25519_public(server_static).hex(),
        },
        "collector_static_private_hex": collector_static.hex(),
        "collector_static_public_hex": x25519_public(collector_static).hex(),
        "server_static_private_hex": server_static.hex(),
        "server_static_public_hex": x25519_public(server_static).hex(),
        "ik_session": ik_session(collector_static, server_static, psk),
        "xx_first_contact": xx_session(collector_static, server_static, psk),
        "refusal": refusal(),
    }


if __name__ == "__main__":
    text = json.dumps(generate(), indent=1, ensure_ascii=False) + "\n"
    if sys.argv[1:] == ["--write"]:
        VECTORS.write_text(text)
        print(f"wrote {VECTORS}")
    else:
        print(text, end="")
