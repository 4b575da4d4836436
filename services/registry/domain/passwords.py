"""A registered collector's service password as the registry keeps and checks it (ADR 0025).

The registry keeps, per registered collector, up to two SCRAM credentials
(`outpost.password_proof`): the **current** one and, for the overlap after
`collectors set-password`, the **previous** one. Each is (salt, argon2id costs, the
public key it is bound to, StoredKey) — never the password, never anything that
logs in: a stolen database gives StoredKey, and a proof needs ClientKey, its pre-image.

- At registration (`collectors register`, or an enrollment token) the verifier the
  collector sent in its hello converts to the current credential (its hash *is*
  SaltedPassword) and the verifier itself is dropped: after registration nothing reads it.
- `set-password` computes a new current credential here, with a fresh salt, for the key on
  record and the username on record; the old current one becomes previous, accepted until
  `now + overlap`. A second `set-password` during an overlap drops the older previous one.
- At a handshake, a registered collector with a credential on record must prove one that
  is accepted now; a previous one past its end is ignored (and deleted at the next
  accepted handshake or `set-password`: lazily, nothing needs a timer).
- A registered collector with **no** credential on record (its verifier could not be
  converted: not a 32-byte argon2id hash) is authenticated by its key alone, as before
  ADR 0025, and logged; `set-password` gives it one.

Pure: `registry.Registry` and `passwords_admin` read and write the rows.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from outpost import password_proof
from outpost.password_proof import PasswordParameters

SALT_BYTES = 16
MEMORY_KIB = 19456
TIME_COST = 2
PARALLELISM = 1
"""Costs of a credential the registry computes: the collector's own (OWASP's argon2id minimum)."""

MIN_OVERLAP = timedelta(seconds=1)
MAX_OVERLAP = timedelta(days=366)
MAX_PASSWORD_CHARS = 1024


class Slot(enum.Enum):
    CURRENT = "current"
    PREVIOUS = "previous"


@dataclass(frozen=True)
class PasswordCredential:
    """One SCRAM credential on record."""

    slot: Slot
    parameters: PasswordParameters
    stored_key: bytes
    set_at: datetime
    accepted_until: datetime | None = None
    """PREVIOUS only: the overlap's end. CURRENT: None (no end)."""

    def __repr__(self) -> str:
        return f"PasswordCredential(slot={self.slot.value}, set_at={self.set_at.isoformat()})"

    def accepted(self, now: datetime) -> bool:
        return self.accepted_until is None or now < self.accepted_until


def accepted(credentials: Sequence[PasswordCredential], now: datetime) -> list[PasswordCredential]:
    """The credentials a handshake may prove now, current first."""
    alive = [c for c in credentials if c.accepted(now)]
    return sorted(alive, key=lambda c: c.slot is not Slot.CURRENT)


def from_verifier(verifier: str, public_key: bytes, now: datetime) -> PasswordCredential | None:
    """The current credential a hello verifier converts to (None: it cannot, see the module doc)."""
    converted = password_proof.from_phc(verifier)
    if converted is None:
        return None
    params = PasswordParameters(
        salt=converted.salt,
        memory_kib=converted.memory_kib,
        time_cost=converted.time_cost,
        parallelism=converted.parallelism,
        public_key=public_key,
    )
    return PasswordCredential(Slot.CURRENT, params, converted.stored_key, now)


def compute(password: str, *, username: str, public_key: bytes, now: datetime) -> PasswordCredential:
    """A new current credential for `password` (fresh salt). Slow (argon2): call it off the loop."""
    params = PasswordParameters(secrets.token_bytes(SALT_BYTES), MEMORY_KIB, TIME_COST, PARALLELISM, public_key)
    salted = password_proof.salted_password(password, username=username, params=params)
    return PasswordCredential(Slot.CURRENT, params, password_proof.stored_key(salted), now)


def rotated(
    credentials: Sequence[PasswordCredential], new: PasswordCredential, *, overlap: timedelta, now: datetime
) -> list[PasswordCredential]:
    """What is on record after `set-password`: `new` current; the old current previous until
    `now + overlap` (an older previous is dropped; no current before: none)."""
    result = [new]
    for c in credentials:
        if c.slot is Slot.CURRENT:
            result.append(
                PasswordCredential(Slot.PREVIOUS, c.parameters, c.stored_key, c.set_at, accepted_until=now + overlap)
            )
    return result


def overlap_problem(overlap: timedelta) -> str | None:
    if not MIN_OVERLAP <= overlap <= MAX_OVERLAP:
        return f"overlap must be between 1 s and {MAX_OVERLAP.days} days"
    return None


def password_problem(password: str) -> str | None:
    if not password:
        return "the new service password is empty"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"the new service password is longer than {MAX_PASSWORD_CHARS} characters"
    return None


def proved_slot(
    credentials: Sequence[PasswordCredential],
    offered: Sequence[tuple[PasswordParameters, bytes]],
    transcript: bytes,
    now: datetime,
) -> Slot | None:
    """Which accepted credential one of the proofs proves (None: none does).

    `offered` pairs each parameter set the Challenge carried with the collector's proof for
    it; a set is matched to the credential on record with exactly those parameters, so a
    gateway that offered a set since dropped or replaced proves nothing with it. Every proof
    is checked (no early exit on the first failure), in constant time per proof.
    """
    proved: set[Slot] = set()
    for params, proof in offered:
        for credential in accepted(credentials, now):
            if credential.parameters != params:
                continue
            message = password_proof.auth_message(transcript, params)
            if password_proof.proof_matches(credential.stored_key, message, proof):
                proved.add(credential.slot)
    if Slot.CURRENT in proved:
        return Slot.CURRENT
    return Slot.PREVIOUS if proved else None
