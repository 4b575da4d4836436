"""Access keys: the rules for names, zones, expiry and whether a key admits a collector now.

An access key (ADR 0019, ADR 0021) is a public id and a 32-byte secret a collector is
given; the secret is the PSK of the sealed session's Noise handshake. Unlike an admin
token it cannot be stored as a digest: the gateway must *use* the secret in the
handshake, so the registry keeps it encrypted under its secret key and hands it only to
gateways (`WatchAccessKeys`).

A key has a name that is unique among keys not revoked (a revoked key keeps its row, for
the audit and the list, and its name can be given to a new key), an optional zone (it
then admits only collectors of that zone), an optional expiry, and may be revoked. Every
change gives the key's row a new `revision`, the cursor of the gateways' watch.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

from outpost import errors
from services.registry.domain import tokens

BOOTSTRAP_NAME = "bootstrap"
MAX_ZONE_CHARS = 256

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class AccessKeyState(enum.StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class AccessKeyRecord:
    """What the registry knows of an access key, without its secret."""

    key_id: str
    name: str
    created_at: datetime
    created_by: str
    zone: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str = ""
    revision: int = 0

    def state(self, now: datetime) -> AccessKeyState:
        if self.revoked_at is not None:
            return AccessKeyState.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return AccessKeyState.EXPIRED
        return AccessKeyState.VALID


@dataclass(frozen=True)
class StoredAccessKey:
    """An access key as stored: its record and its secret, encrypted under the registry's key."""

    record: AccessKeyRecord
    nonce: bytes
    ciphertext: bytes
    encryption_key_id: str

    def __repr__(self) -> str:
        return f"StoredAccessKey(key_id={self.record.key_id!r}, name={self.record.name!r})"


class AccessKeyEventKind(enum.StrEnum):
    CHANGED = "changed"
    BOOKMARK = "bookmark"


@dataclass(frozen=True)
class AccessKeyEvent:
    """One entry of the gateways' watch: a key's current state, or a bookmark.

    `psk` is the usable secret (empty once revoked: a gateway has no more use for it).
    """

    revision: int
    kind: AccessKeyEventKind
    key_id: str = ""
    name: str = ""
    zone: str | None = None
    psk: bytes = b""
    expires_at: datetime | None = None
    revoked: bool = False

    def __repr__(self) -> str:  # never print the secret by accident
        return (
            f"AccessKeyEvent(revision={self.revision}, kind={self.kind}, key_id={self.key_id!r}, "
            f"revoked={self.revoked})"
        )


def require_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise errors.InvalidArgument(
            f"access key name {errors.brief(name)} must be 1-64 letters, digits or . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def require_zone(zone: str) -> str | None:
    """The zone a key is bound to; None for "" (any zone)."""
    zone = zone.strip()
    if not zone:
        return None
    if len(zone) > MAX_ZONE_CHARS or not zone.isprintable():
        raise errors.InvalidArgument(f"zone {errors.brief(zone)} must be 1-{MAX_ZONE_CHARS} printable characters")
    return zone


def expiry(now: datetime, seconds: int) -> datetime | None:
    """When a key created at `now` for `seconds` expires (0: never); the admin tokens' bounds."""
    return tokens.expiry(now, seconds)


def name_taken(name: str) -> errors.AlreadyExists:
    return errors.AlreadyExists(
        f"an access key named '{name}' exists and is not revoked; revoke it or choose another name"
    )


def not_found(name: str) -> errors.NotFound:
    return errors.NotFound(f"no access key named '{name}' (outpostctl access-keys list)")
