"""`server.pin`: the gateway Noise static keys this collector trusts (ADR 0019 pinning, ADR 0024 rotation).

Where the collector's server keys come from:

1. the access key (`outpost-ak1.<id>.<secret>.<server key>`): pinned from the first
   connection;
2. `server.pin` in the data directory: a key learned on an earlier first contact, and
   the keys the server announced over a sealed session ahead of a rotation;
3. neither: first contact (Noise XX, trust on first use). The key is written here only
   after the server proved the session's keys (its first record opened), and its
   fingerprint is logged so an operator can compare it with `outpostctl server info`.

With any pinned key the collector runs IK only and never falls back to first contact: a
gateway that cannot prove a pinned key is refused. Which pinned key it tries first, and
when it drops an old one, is `transport.sealed.SealedSessions`'s rule.

The file is mode 0600, written atomically; comment lines name each key's fingerprint.
One key line per key, at most `MAX_KEYS`: the key (32-byte X25519 public key, unpadded
URL-safe base64), then optionally `activates=<unix seconds>` (an announced key, used from
then on) or `retired` (superseded by a newer key this collector has seen proven; kept so
an access key carrying it is not trusted again):

    # outpost server keys; delete this file to trust the server's key anew
    # SHA256:...
    <key>
    # SHA256:...
    <key> activates=1765200000
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from outpost.session.handshake import fingerprint

PIN_FILE = "server.pin"
KEY_BYTES = 32
MAX_KEYS = 4
"""The key in use, one announced, and the retired ones kept as markers: a rotation at a time."""


class ServerPinError(Exception):
    """`server.pin` exists but cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class PinnedKey:
    """One key of `server.pin`."""

    public_key: bytes
    activates_at: float | None = None
    """An announced key: when the server starts proving it (unix seconds). None: in use already."""
    retired: bool = False
    """Superseded: never tried again."""


class ServerPinStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / PIN_FILE

    def load(self) -> bytes | None:
        """The first key that is not retired, or None when nothing is pinned yet."""
        usable = [k for k in self.load_all() if not k.retired]
        return usable[0].public_key if usable else None

    def load_all(self) -> list[PinnedKey]:
        """Every key of the file, in its order ([] when there is no file)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise ServerPinError(f"cannot read {self.path}: {exc}") from exc
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        try:
            if not 1 <= len(lines) <= MAX_KEYS:
                raise ValueError(f"{len(lines)} key lines")
            return [_parse(line) for line in lines]
        except (ValueError, binascii.Error) as exc:
            raise ServerPinError(
                f"{self.path} is damaged ({exc}); delete it to trust the server's key anew on the next connection"
            ) from exc

    def save(self, key: bytes) -> None:
        """Pin `key` alone (first contact)."""
        self.save_all([PinnedKey(key)])

    def save_all(self, keys: list[PinnedKey]) -> None:
        """Write `keys` (mode 0600, temp file + fsync + rename: never half a pin)."""
        if not 1 <= len(keys) <= MAX_KEYS or any(len(k.public_key) != KEY_BYTES for k in keys):
            raise ValueError(f"1 to {MAX_KEYS} server keys of {KEY_BYTES} bytes")
        lines = ["# outpost server keys; delete this file to trust the server's key anew"]
        for key in keys:
            lines.append(f"# {fingerprint(key.public_key)}")
            lines.append(_format(key))
        text = "\n".join(lines) + "\n"
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


def _parse(line: str) -> PinnedKey:
    encoded, *flags = line.split()
    key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    if len(key) != KEY_BYTES:
        raise ValueError(f"{len(key)} bytes, not a {KEY_BYTES}-byte key")
    activates_at: float | None = None
    retired = False
    for flag in flags:
        if flag == "retired":
            retired = True
        elif flag.startswith("activates="):
            activates_at = float(flag.removeprefix("activates="))
        else:
            raise ValueError(f"unknown key flag {flag!r}")
    return PinnedKey(key, activates_at, retired)


def _format(key: PinnedKey) -> str:
    text = base64.urlsafe_b64encode(key.public_key).decode("ascii").rstrip("=")
    if key.retired:
        return f"{text} retired"
    if key.activates_at is not None:
        return f"{text} activates={int(key.activates_at)}"
    return text
