"""What a collector's password verifier is computed over: the password bound to its key.

A collector never sends its service password; it sends an argon2id verifier (ADR 0003).
If that verifier were of the password alone it would be a bearer value: copied from
another collector's hello (or from a database) and sent with an attacker's own key, it
would get that key registered the moment an admin typed the real password. So the
verifier is argon2id over `verifier_input(username, public_key, password)`: the password
with the collector's service username and Ed25519 public key bound into argon2's input
(ADR 0013). The registry, given the password by the admin, recomputes it for the key on
record; a verifier made for any other key never matches.

The collector and the registry both use this one definition; it needs no protobuf, so
the registry's pure domain can use it too.
"""

from __future__ import annotations

CONTEXT = b"outpost-registration-v1"


def verifier_input(*, username: str, public_key: bytes, password: str) -> bytes:
    """The bytes argon2id hashes: context, username, public key, password, each length-prefixed.

    Length prefixes make the encoding unambiguous: no two different tuples share it.
    """
    parts = [CONTEXT, username.encode(), public_key, password.encode()]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)
