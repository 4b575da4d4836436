"""The server's Noise static keys (X25519): which one answers handshakes, and which are accepted.

Gateways prove the server's identity with the `current` key; collectors pin its public
half (ADR 0019). The registry keeps the keys, so every gateway replica proves the same
identity and a gateway holds no key file of its own (ADR 0021). Rotation (a later
increment) announces a `next` key ahead and keeps a `retired` one accepted for a window;
the states exist now so the table needs no change then. At most one key is `current`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from outpost.session.handshake import fingerprint

KEY_BYTES = 32


class ServerKeyState(enum.StrEnum):
    CURRENT = "current"
    NEXT = "next"
    RETIRED = "retired"


STATE_ORDER = {ServerKeyState.CURRENT: 0, ServerKeyState.NEXT: 1, ServerKeyState.RETIRED: 2}
"""Gateways are given the current key first, then the announced one, then retired ones."""


@dataclass(frozen=True)
class ServerKey:
    public_key: bytes
    private_key: bytes
    state: ServerKeyState
    created_at: datetime
    activated_at: datetime | None = None

    def __repr__(self) -> str:  # never print the private half
        return f"ServerKey({self.fingerprint}, {self.state})"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def new_server_key(now: datetime) -> ServerKey:
    """A fresh X25519 key pair, current from `now` (the first start of an installation)."""
    private = X25519PrivateKey.generate()
    return ServerKey(
        public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        private_key=private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        state=ServerKeyState.CURRENT,
        created_at=now,
        activated_at=now,
    )


def public_of(private_key: bytes) -> bytes:
    """The public half of a raw X25519 private key (checks a decrypted key is the stored pair)."""
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def ordered(keys: list[ServerKey]) -> list[ServerKey]:
    return sorted(keys, key=lambda k: (STATE_ORDER[k.state], -(k.activated_at or k.created_at).timestamp()))
