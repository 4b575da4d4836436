"""Admin tokens: the rules for names, roles, expiry and whether a token admits a call.

A token is a bearer secret held by a person or a script; the registry stores only its
SHA-256 (`outpost.auth.bearer`). It has a unique name (what the audit records), a role,
an optional expiry, and may be revoked (kept, marked, refused from its next call). The
first start of an installation creates `bootstrap-admin` so `outpostctl` works at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from outpost import errors
from outpost.auth.principals import Principal, Role

BOOTSTRAP_NAME = "bootstrap-admin"
MAX_EXPIRY = timedelta(days=3660)
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is written at most this often per token: a write per call would cost more
than the call, and a minute answers "is this token still in use?"."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class AdminToken:
    name: str
    role: Role
    digest: bytes
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str = ""
    last_used_at: datetime | None = None

    def __repr__(self) -> str:  # the digest is not a secret, but it is no one's business
        return f"AdminToken(name={self.name!r}, role={self.role.label})"

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    @property
    def principal(self) -> Principal:
        return Principal(name=self.name, role=self.role)


def require_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise errors.InvalidArgument(
            f"token name {errors.brief(name)} must be 1-64 letters, digits or . _ @ -, starting with a letter or digit"
        )
    if name.startswith("service:"):
        raise errors.InvalidArgument("token names starting with 'service:' are reserved for service identities")
    return name


def expiry(now: datetime, seconds: int) -> datetime | None:
    """When a token created at `now` for `seconds` expires (0: never)."""
    if seconds == 0:
        return None
    if seconds < 0 or timedelta(seconds=seconds) > MAX_EXPIRY:
        raise errors.InvalidArgument(f"expiry must be between 1 s and {MAX_EXPIRY.days} days")
    return now + timedelta(seconds=seconds)


def refusal_reason(token: AdminToken | None, now: datetime) -> str | None:
    """Why `token` admits nothing (for the log), or None when it is usable."""
    if token is None:
        return "unknown"
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and now >= token.expires_at:
        return "expired"
    return None


def needs_touch(token: AdminToken, now: datetime) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION
