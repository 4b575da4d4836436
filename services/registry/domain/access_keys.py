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

Rotation (ADR 0024): `access-keys rotate NAME` gives the name a new key (new id, new
secret, same zone) and marks the old row `replaced_by` the new id with `expires_at`
moved to the overlap's end, never later than it already was. During the overlap both
rows are live and admit collectors; the name belongs to the row not replaced, so a
later create, rotate or revoke addresses that one (revoke ends both).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    replaced_by: str | None = None
    """The key id that replaced this one (`access-keys rotate`); it stays valid until `expires_at`."""

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
    replaced_by: str = ""

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


MAX_OVERLAP = tokens.MAX_EXPIRY


def overlap_end(now: datetime, overlap_seconds: int, expires_at: datetime | None) -> datetime:
    """Until when a key rotated at `now` stays valid: the overlap's end, or its own earlier expiry.

    An overlap of 0 would cut off every collector that has not yet been handed the new
    key, so at least 1 s is required; a rotation never extends a key's life.
    """
    if overlap_seconds < 1 or timedelta(seconds=overlap_seconds) > MAX_OVERLAP:
        raise errors.InvalidArgument(f"overlap must be between 1 s and {MAX_OVERLAP.days} days")
    end = now + timedelta(seconds=overlap_seconds)
    return end if expires_at is None else min(end, expires_at)


def require_rotatable(
    name: str, live: AccessKeyRecord | None, latest: AccessKeyRecord | None, now: datetime
) -> AccessKeyRecord:
    """The key `rotate NAME` replaces: the live one not yet replaced, valid now; else a clear refusal."""
    if live is None:
        if latest is None:
            raise not_found(name)
        raise errors.FailedPrecondition(
            f"access key '{name}' is revoked: a revoked key cannot be rotated; create a new one "
            "(outpostctl access-keys create)"
        )
    if live.state(now) is AccessKeyState.EXPIRED:
        raise errors.FailedPrecondition(
            f"access key '{name}' has expired: collectors using it are already refused, so there is no "
            "overlap to give; revoke it and create a new one"
        )
    return live
