"""Checks on the argon2id password verifiers collectors send, and the password check.

A collector computes the verifier of its service password itself (ADR 0003), so the
registry only ever sees a PHC string like `$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>`.
What it hashes is the password bound to the collector's username and public key
(`outpost.registration`, ADR 0013): the check recomputes it for the key on record, so a
verifier copied from another collector's hello onto an attacker's key never matches.
That string comes from the network and chooses its own cost: an unchecked one with
`m=4194304` would make the registry allocate 4 GiB on the first registration attempt.
So the shape is checked strictly and the costs are capped *before* anything is stored,
and again before argon2 ever runs on it.
"""

from __future__ import annotations

import hmac
import re

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from outpost.registration import verifier_input

MAX_MEMORY_KIB = 262_144
"""256 MiB: above OWASP's and RFC 9106's recommendations, below hurting the registry."""
MAX_TIME_COST = 16
MAX_PARALLELISM = 16
MAX_VERIFIER_CHARS = 512

_PHC = re.compile(
    r"\$argon2id\$v=19\$m=(?P<m>[0-9]{1,10}),t=(?P<t>[0-9]{1,5}),p=(?P<p>[0-9]{1,5})"
    r"\$(?P<salt>[A-Za-z0-9+/]{11,86})\$(?P<hash>[A-Za-z0-9+/]{22,86})"
)

_hasher = argon2.PasswordHasher()


def verifier_problem(verifier: str) -> str | None:
    """Why `verifier` is unacceptable, for the refusal message; None when it is fine."""
    if len(verifier) > MAX_VERIFIER_CHARS:
        return f"password verifier is longer than {MAX_VERIFIER_CHARS} characters"
    match = _PHC.fullmatch(verifier)
    if match is None:
        return "password verifier is not an argon2id (v=19) PHC string"
    memory, time_cost, parallelism = (int(match[k]) for k in ("m", "t", "p"))
    if not 1 <= parallelism <= MAX_PARALLELISM:
        return f"password verifier parallelism p={parallelism} is outside 1..{MAX_PARALLELISM}"
    if not 1 <= time_cost <= MAX_TIME_COST:
        return f"password verifier time cost t={time_cost} is outside 1..{MAX_TIME_COST}"
    if not 8 * parallelism <= memory <= MAX_MEMORY_KIB:
        return f"password verifier memory cost m={memory} KiB is outside {8 * parallelism}..{MAX_MEMORY_KIB}"
    return None


def credentials_match(*, stored_username: str, verifier: str, public_key: bytes, username: str, password: str) -> bool:
    """True when both match for the collector whose key is `public_key` (the key on record).

    Runs argon2 even on a wrong username, so timing tells nothing. Slow on purpose (that
    is argon2's job): call it from a worker thread.
    """
    if verifier_problem(verifier) is not None:
        return False
    username_ok = hmac.compare_digest(stored_username.encode(), username.encode())
    password_ok: bool
    try:
        bound = verifier_input(username=username, public_key=public_key, password=password)
        password_ok = _hasher.verify(verifier, bound)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        password_ok = False
    return username_ok and password_ok
