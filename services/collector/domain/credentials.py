"""The service password's argon2id verifier: what the collector sends instead of it.

The collector hashes the password once at start with a fresh salt and sends only the PHC
string (`$argon2id$v=19$m=19456,t=2,p=1$...`); the registry checks it against the password
the admin types at registration. What is hashed is the password bound to this collector's
username and public key (`outpost.registration`, ADR 0013), so the verifier is useless
with any other key. The parameters are OWASP's minimum for argon2id (19 MiB, 2 passes,
1 lane): costly to brute-force, cheap enough for a small collector VM.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type

from outpost.registration import verifier_input

TIME_COST = 2
MEMORY_COST_KIB = 19456
PARALLELISM = 1

_HASHER = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM, type=Type.ID)


def password_verifier(password: str, *, username: str, public_key: bytes) -> str:
    """argon2id PHC string of `password` bound to `username` and `public_key`.

    Raise ValueError for an empty password.
    """
    if not password:
        raise ValueError("the service password is empty")
    return _HASHER.hash(verifier_input(username=username, public_key=public_key, password=password))
