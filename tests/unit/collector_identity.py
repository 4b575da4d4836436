"""A fixed collector identity and handshake values, so expected messages are constants.

Ed25519 signatures are deterministic, so the valid proof for HELLO over NONCE from
SERVER_INSTANCE is a constant too.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from outpost.agent.v1 import agent_pb2
from outpost.session import handshake
from outpost.version import PROTOCOL_VERSION

SERVER_INSTANCE = "srv-instance-a"
OTHER_SERVER_INSTANCE = "srv-instance-b"
SESSION_ID = "session-1"
NONCE = bytes(range(32))
OTHER_NONCE = bytes(range(32, 64))

PRIVATE_KEY = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
PUBLIC_KEY = PRIVATE_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
FINGERPRINT = handshake.fingerprint(PUBLIC_KEY)


def make_hello(**overrides: object) -> agent_pb2.Hello:
    """A valid hello of the test collector, with any field overridden."""
    fields: dict[str, object] = {
        "protocol_version": PROTOCOL_VERSION,
        "capabilities": ["state_change.v1"],
        "instance_uid": "0b7f6a3e-uid",
        "name": "edge-7",
        "zone": "dc-north",
        "version": "0.1.0",
        "bound_server_instance": "",
        "public_key": PUBLIC_KEY,
        "username": "svc-edge-7",
        "password_verifier": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    }
    fields.update(overrides)
    return agent_pb2.Hello(**fields)  # type: ignore[arg-type]


HELLO = make_hello()
SIGNATURE = handshake.sign(PRIVATE_KEY, HELLO, NONCE, SERVER_INSTANCE)


def sign(data: bytes) -> bytes:
    """The collector's signer, as the CollectorSession takes it."""
    return PRIVATE_KEY.sign(data)
