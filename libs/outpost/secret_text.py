"""The text forms shared by Outpost's one-line secrets (access keys, enrollment tokens).

Both are `<prefix>.<id>.<32-byte value in unpadded URL-safe base64>[...]`, written to
0600 files. Kept once here so the two formats cannot drift apart in how they encode,
check or store a value.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from outpost.auth.bearer import write_secret_file


def encode_value(raw: bytes) -> str:
    """Unpadded URL-safe base64: safe in a file, an environment variable and a URL."""
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_value(text: str, size: int, what: str) -> bytes:
    """The `size` bytes `text` encodes; ValueError naming `what` (never the text) otherwise.

    Strict: a character outside the URL-safe alphabet is refused, not skipped.
    """
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not URL-safe base64") from exc
    if len(raw) != size:
        raise ValueError(f"{what} is {len(raw)} bytes, not {size}")
    return raw


def write_secret_text_file(path: Path, text: str) -> None:
    """Write one line of secret text to `path`, mode 0600, atomically."""
    write_secret_file(path, text)
