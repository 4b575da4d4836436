"""The server's Noise static keys (X25519): which one answers handshakes, and which are accepted.

Gateways prove the server's identity with the `current` key; collectors pin its public
half (ADR 0019). The registry keeps the keys, so every gateway replica proves the same
identity and a gateway holds no key file of its own (ADR 0021).

Rotation (ADR 0024) announces a `next` key ahead and keeps the replaced one accepted for
a window. A key's state is a function of time, not of who last wrote the row: the next
key carries its activation time in `activated_at`, and the key it replaces carries
`retires_at` (activation + the window). `effective()` computes every key's state at a
given instant, so registry replicas and gateways agree without any of them having to
flip a row at the right moment; the registry writes the flipped states back lazily only
to keep the table readable and the one-current index true.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from outpost import errors
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
    retires_at: datetime | None = None
    """Until when a replaced key is still accepted (None: no end set)."""

    def __repr__(self) -> str:  # never print the private half
        return f"ServerKey({self.fingerprint}, {self.state})"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def new_server_key(now: datetime, *, activates_at: datetime | None = None) -> ServerKey:
    """A fresh X25519 key pair: current from `now` (first start), or next until `activates_at`."""
    private = X25519PrivateKey.generate()
    return ServerKey(
        public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        private_key=private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        state=ServerKeyState.CURRENT if activates_at is None else ServerKeyState.NEXT,
        created_at=now,
        activated_at=now if activates_at is None else activates_at,
    )


@dataclass(frozen=True)
class RotationPlan:
    """What `RotateServerKey` writes: the new key (state NEXT) and the current key's end."""

    next_key: ServerKey
    replaced: ServerKey
    replaced_retires_at: datetime


MAX_WINDOW_SECONDS = 366 * 24 * 3600
"""The longest announcement or acceptance window: a year."""


def plan_rotation(
    keys: list[ServerKey], now: datetime, *, activate_in_seconds: int, retire_after_seconds: int
) -> RotationPlan:
    """A rotation of the key current at `now`; FailedPrecondition while another one is announced.

    One rotation at a time keeps the collector's side simple (it pins at most the key it
    uses and one announced key) and the gateway's cost bounded (at most three keys to try).
    """
    # A zero acceptance window (also what an empty request says) would cut off, at the
    # activation, every collector that has not heard of the new key yet: at least 1 s.
    for flag, value, least in (("--activate-in", activate_in_seconds, 0), ("--retire-after", retire_after_seconds, 1)):
        if not least <= value <= MAX_WINDOW_SECONDS:
            raise errors.InvalidArgument(f"{flag} must be between {least} and {MAX_WINDOW_SECONDS} seconds (a year)")
    activate_in = timedelta(seconds=activate_in_seconds)
    retire_after = timedelta(seconds=retire_after_seconds)
    states = effective(keys, now)
    pending = [k for k in states if k.state is ServerKeyState.NEXT]
    if pending:
        raise errors.FailedPrecondition(
            f"server key {pending[0].fingerprint} is already announced, activating at "
            f"{pending[0].activated_at:%Y-%m-%d %H:%M:%S} UTC: rotate again after that"
        )
    current = next((k for k in states if k.state is ServerKeyState.CURRENT), None)
    if current is None:
        raise errors.FailedPrecondition("the registry has no current server key to rotate")
    activates_at = now + activate_in
    return RotationPlan(
        next_key=new_server_key(now, activates_at=activates_at),
        replaced=current,
        replaced_retires_at=activates_at + retire_after,
    )


class TimedKey(Protocol):
    """What `effective` reads of a key: the decrypted `ServerKey` or the store's row alike."""

    @property
    def state(self) -> ServerKeyState: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def activated_at(self) -> datetime | None: ...
    @property
    def retires_at(self) -> datetime | None: ...


K = TypeVar("K", bound=TimedKey)


def effective(keys: list[K], now: datetime) -> list[K]:
    """Every key still accepted at `now`, with its state at `now`, current first.

    Current: of the keys whose activation has come, the latest. Next: activation still
    ahead. Retired: any other activated key whose `retires_at` has not passed; one
    without `retires_at` or past it is no longer accepted and left out.
    """
    activated = [k for k in keys if _activation(k) <= now]
    # A tie (a rotation with --activate-in 0 in the same instant) goes to the newer key.
    current = max(activated, key=lambda k: (_activation(k), _NEWER[k.state]), default=None)
    result: list[K] = []
    for key in keys:
        if key is current:
            state = ServerKeyState.CURRENT
        elif _activation(key) > now:
            state = ServerKeyState.NEXT
        elif key.retires_at is not None and now < key.retires_at:
            state = ServerKeyState.RETIRED
        else:
            continue
        result.append(key if key.state is state else replace(key, state=state))  # type: ignore[type-var]
    return ordered(result)


_NEWER = {ServerKeyState.RETIRED: 0, ServerKeyState.CURRENT: 1, ServerKeyState.NEXT: 2}


def _activation(key: TimedKey) -> datetime:
    return key.activated_at or key.created_at


def public_of(private_key: bytes) -> bytes:
    """The public half of a raw X25519 private key (checks a decrypted key is the stored pair)."""
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def ordered(keys: list[K]) -> list[K]:
    return sorted(keys, key=lambda k: (STATE_ORDER[k.state], -_activation(k).timestamp()))
