"""`server.pin`: the gateway's Noise static key this collector trusts (ADR 0019, pinning rule).

Where the collector's server key comes from, first match wins:

1. the access key (`outpost-ak1.<id>.<secret>.<server key>`): pinned from the first
   connection, `server.pin` is neither read nor written;
2. `server.pin` in the data directory: learned on an earlier first contact;
3. neither: first contact (Noise XX, trust on first use). The key is written here only
   after the server proved the session's keys (its first record opened), and its
   fingerprint is logged so an operator can compare it with `outpostctl server info`.

With a pin the collector runs IK only and never falls back: a gateway that cannot prove
the pinned key is refused. After a deliberate server key change, delete `server.pin` (or
give an access key that carries the new key) and restart the collector.

The file is two lines, mode 0600, written atomically:

    # outpost server key SHA256:<fingerprint>; delete this file to trust the server's key anew
    <the 32-byte X25519 public key, unpadded URL-safe base64>
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from outpost.session.handshake import fingerprint

PIN_FILE = "server.pin"
KEY_BYTES = 32


class ServerPinError(Exception):
    """`server.pin` exists but cannot be used; the message says how to fix it."""


class ServerPinStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / PIN_FILE

    def load(self) -> bytes | None:
        """The pinned key, or None when nothing is pinned yet."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ServerPinError(f"cannot read {self.path}: {exc}") from exc
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        try:
            if len(lines) != 1:
                raise ValueError(f"{len(lines)} key lines")
            key = base64.urlsafe_b64decode(lines[0] + "=" * (-len(lines[0]) % 4))
        except (ValueError, binascii.Error) as exc:
            raise ServerPinError(
                f"{self.path} is damaged ({exc}); delete it to trust the server's key anew on the next connection"
            ) from exc
        if len(key) != KEY_BYTES:
            raise ServerPinError(f"{self.path} holds {len(key)} bytes, not a {KEY_BYTES}-byte key; delete it to re-pin")
        return key

    def save(self, key: bytes) -> None:
        """Pin `key` (mode 0600, temp file + fsync + rename: never half a pin)."""
        if len(key) != KEY_BYTES:
            raise ValueError(f"a server key is {KEY_BYTES} bytes")
        text = (
            f"# outpost server key {fingerprint(key)}; delete this file to trust the server's key anew\n"
            f"{base64.urlsafe_b64encode(key).decode('ascii').rstrip('=')}\n"
        )
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            tmp.replace(self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
