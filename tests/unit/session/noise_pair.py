"""Keys and a completed collector/gateway handshake pair for the sealed-session tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from outpost.session.noise import Initiator, Responder, SealedChannel
from outpost.session.noise.channel import RekeyPolicy

ACCESS_KEY_ID = "ak-lab-1"


@dataclass(frozen=True)
class KeyPair:
    private: bytes
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        key = X25519PrivateKey.generate()
        return cls(
            key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
            key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        )


@dataclass
class World:
    """A collector key, a gateway key, and the gateway's table of access keys."""

    collector: KeyPair = field(default_factory=KeyPair.generate)
    server: KeyPair = field(default_factory=KeyPair.generate)
    psk: bytes = field(default_factory=lambda: os.urandom(32))
    access_keys: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.access_keys.setdefault(ACCESS_KEY_ID, self.psk)

    def initiator(self, *, pinned: bool = True, **overrides: object) -> Initiator:
        args: dict[str, object] = {
            "static_private": self.collector.private,
            "access_key_id": ACCESS_KEY_ID,
            "psk": self.psk,
            "transport": "tcp",
            "server_static": self.server.public if pinned else None,
        }
        args.update(overrides)
        return Initiator(**args)  # type: ignore[arg-type]

    def responder(self, **overrides: object) -> Responder:
        args: dict[str, object] = {
            "static_private": self.server.private,
            "transport": "tcp",
            "psk_for": self.access_keys.get,
        }
        args.update(overrides)
        return Responder(**args)  # type: ignore[arg-type]


def run_handshake(initiator: Initiator, responder: Responder) -> None:
    """Exchange handshake messages until both are complete (raises what either raises)."""
    responder.read_message(initiator.write_message(b""))
    initiator.read_message(responder.write_message(b""))
    if not initiator.complete:
        responder.read_message(initiator.write_message(b""))
    assert initiator.complete and responder.complete


def channels(
    world: World, *, pinned: bool = True, policy: RekeyPolicy | None = None, now: float = 0.0
) -> tuple[SealedChannel, SealedChannel]:
    """(collector channel, gateway channel) after a full handshake."""
    initiator, responder = world.initiator(pinned=pinned), world.responder()
    run_handshake(initiator, responder)
    return initiator.channel(now, policy=policy), responder.channel(now, policy=policy)
