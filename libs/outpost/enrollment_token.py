"""Zone enrollment tokens: the text a collector is given to join a zone without an admin step.

An enrollment token is a second secret beside the access key (ADR 0022): the access key
says "may talk to us" (the sealed session's PSK), the token says "may be registered and
enabled in zone Z without an admin". The registry keeps only the SHA-256 of the secret
(256 random bits need no slow hash, as admin bearer tokens, `outpost.auth.bearer`); the
collector sends the token inside its Hello, which must travel only inside a sealed
session (or TLS), never in clear.

The text form is one line, safe in an environment variable, a Kubernetes Secret or a
file (`--enrollment-token-file`, `OUTPOST_ENROLLMENT_TOKEN`):

    outpost-et1.<token id>.<secret>

`<token id>` is 1-64 characters of `[A-Za-z0-9_-]` (the registry's lookup key, public);
`<secret>` is 32 bytes in unpadded URL-safe base64 (43 characters). The prefix lets a
secret scanner find a leaked token and versions the format.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from outpost.secret_text import decode_value, encode_value, write_secret_text_file

PREFIX = "outpost-et1"
SECRET_BYTES = 32
MAX_TOKEN_ID_CHARS = 64
TOKEN_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ENVIRONMENT_VARIABLE = "OUTPOST_ENROLLMENT_TOKEN"
MAX_TEXT_CHARS = 256
"""Longer text is refused before parsing: the Hello field is bounded by the same figure."""


class EnrollmentTokenFormatError(ValueError):
    """The text is not an enrollment token; the message says what is wrong, never the secret."""


def new_token_id() -> str:
    """A random public id: it reveals nothing about the secret."""
    return "et_" + secrets.token_hex(8)


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def secret_digest(secret: bytes) -> bytes:
    """What the registry stores and compares: SHA-256 of the raw secret."""
    return hashlib.sha256(secret).digest()


def same_digest(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _unb64(text: str) -> bytes:
    try:
        return decode_value(text, SECRET_BYTES, "the enrollment token's secret")
    except ValueError as exc:
        raise EnrollmentTokenFormatError(str(exc)) from exc


@dataclass(frozen=True)
class EnrollmentToken:
    """What a collector holds: the public token id and the secret."""

    token_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if not TOKEN_ID_PATTERN.fullmatch(self.token_id):
            raise EnrollmentTokenFormatError(
                f"an enrollment-token id is 1-{MAX_TOKEN_ID_CHARS} characters of A-Z a-z 0-9 _ -"
            )
        if len(self.secret) != SECRET_BYTES:
            raise EnrollmentTokenFormatError(f"an enrollment-token secret is {SECRET_BYTES} bytes")

    def __repr__(self) -> str:  # never print the secret by accident (logs, tracebacks)
        return f"EnrollmentToken(token_id={self.token_id!r})"

    def encode(self) -> str:
        return ".".join((PREFIX, self.token_id, encode_value(self.secret)))

    @property
    def digest(self) -> bytes:
        return secret_digest(self.secret)

    @classmethod
    def parse(cls, text: str) -> EnrollmentToken:
        text = text.strip()
        if len(text) > MAX_TEXT_CHARS or any(c.isspace() for c in text):
            raise EnrollmentTokenFormatError("an enrollment token is one word on one line")
        parts = text.split(".")
        if parts[0] != PREFIX:
            raise EnrollmentTokenFormatError(f"an enrollment token starts with '{PREFIX}.'")
        if len(parts) != 3:
            raise EnrollmentTokenFormatError(f"an enrollment token is '{PREFIX}.<id>.<secret>'")
        return cls(token_id=parts[1], secret=_unb64(parts[2]))


def read_enrollment_token_file(path: Path) -> EnrollmentToken:
    """The token in `path`; OSError, or EnrollmentTokenFormatError naming the file (never the secret)."""
    try:
        return EnrollmentToken.parse(path.read_text())
    except EnrollmentTokenFormatError as exc:
        raise EnrollmentTokenFormatError(f"{path}: {exc}") from exc


def write_enrollment_token_file(path: Path, token: EnrollmentToken) -> None:
    """Write `token` to `path` with mode 0600, atomically (never a half-written token)."""
    write_secret_text_file(path, token.encode())
