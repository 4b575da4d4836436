"""Access keys (seed 001's *project access key*): the text a collector is given, and the grant a gateway holds.

An access key is a public id and a 32-byte secret; the secret is the PSK of the sealed
session's Noise handshake (ADR 0019), so a gateway can tell a collector that holds a valid
key from anyone else before it reads or stores anything of the collector. The text form
optionally carries the server's static public key, so a collector given it pins the
server from its first connection (Noise IK) instead of trusting on first use (XX).

The text form is one line, safe in an environment variable, a Kubernetes Secret or a
file (`--access-key-file`, `OUTPOST_ACCESS_KEY`):

    outpost-ak1.<key id>.<secret>[.<server public key>]

`<key id>` is 1-64 characters of `[A-Za-z0-9_-]`; `<secret>` and `<server public key>`
are 32 bytes each in unpadded URL-safe base64 (43 characters). The prefix lets a secret
scanner find a leaked key and versions the format.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from outpost.secret_text import decode_value, encode_value, write_secret_text_file

PREFIX = "outpost-ak1"
KEY_BYTES = 32
MAX_KEY_ID_CHARS = 64
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ENVIRONMENT_VARIABLE = "OUTPOST_ACCESS_KEY"
MAX_TEXT_CHARS = 512


class AccessKeyFormatError(ValueError):
    """The text is not an access key; the message says what is wrong, never the secret."""


def new_key_id() -> str:
    """A random public id: it reveals nothing about the secret (ADR 0019, "Alternatives")."""
    return "ak_" + secrets.token_hex(8)


def new_secret() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _unb64(text: str, what: str) -> bytes:
    try:
        return decode_value(text, KEY_BYTES, f"the access key's {what}")
    except ValueError as exc:
        raise AccessKeyFormatError(str(exc)) from exc


@dataclass(frozen=True)
class AccessKey:
    """What a collector holds: the id, the secret (its Noise PSK) and, optionally, the server key to pin."""

    key_id: str
    secret: bytes
    server_public_key: bytes | None = None

    def __post_init__(self) -> None:
        if not KEY_ID_PATTERN.fullmatch(self.key_id):
            raise AccessKeyFormatError(f"an access-key id is 1-{MAX_KEY_ID_CHARS} characters of A-Z a-z 0-9 _ -")
        if len(self.secret) != KEY_BYTES:
            raise AccessKeyFormatError(f"an access-key secret is {KEY_BYTES} bytes")
        if self.server_public_key is not None and len(self.server_public_key) != KEY_BYTES:
            raise AccessKeyFormatError(f"a server public key is {KEY_BYTES} bytes")

    def __repr__(self) -> str:  # never print the secret by accident (logs, tracebacks)
        pinned = "pinned" if self.server_public_key else "unpinned"
        return f"AccessKey(key_id={self.key_id!r}, {pinned})"

    def encode(self) -> str:
        parts = [PREFIX, self.key_id, encode_value(self.secret)]
        if self.server_public_key is not None:
            parts.append(encode_value(self.server_public_key))
        return ".".join(parts)

    @classmethod
    def parse(cls, text: str) -> AccessKey:
        text = text.strip()
        if len(text) > MAX_TEXT_CHARS or any(c.isspace() for c in text):
            raise AccessKeyFormatError("an access key is one word on one line")
        parts = text.split(".")
        if parts[0] != PREFIX:
            raise AccessKeyFormatError(f"an access key starts with '{PREFIX}.'")
        if len(parts) not in (3, 4):
            raise AccessKeyFormatError(f"an access key is '{PREFIX}.<id>.<secret>[.<server key>]'")
        server = _unb64(parts[3], "server public key") if len(parts) == 4 else None
        return cls(key_id=parts[1], secret=_unb64(parts[2], "secret"), server_public_key=server)


def read_access_key_file(path: Path) -> AccessKey:
    """The access key in `path`; OSError, or AccessKeyFormatError naming the file (never the secret)."""
    try:
        return AccessKey.parse(path.read_text())
    except AccessKeyFormatError as exc:
        raise AccessKeyFormatError(f"{path}: {exc}") from exc


def write_access_key_file(path: Path, key: AccessKey) -> None:
    """Write `key` to `path` with mode 0600, atomically (never a half-written key)."""
    write_secret_text_file(path, key.encode())


@dataclass(frozen=True)
class AccessKeyGrant:
    """What a gateway knows of a valid access key: enough to run the handshake and bound the collector.

    `zone` set: the key admits only collectors that say they are in that zone (the
    gateway refuses any other zone in the Hello, before the registry hears of it).
    """

    key_id: str
    name: str
    psk: bytes
    zone: str | None = None

    def __repr__(self) -> str:
        return f"AccessKeyGrant(key_id={self.key_id!r}, name={self.name!r}, zone={self.zone!r})"
