"""Zone enrollment tokens: the rules for creating them and for letting one enroll a collector.

A token (ADR 0022) lets a collector be registered and enabled in the token's zone without
an admin step: the admin's decision is made ahead, when they create the token, and is
bounded by uses, an expiry and the source networks the collector may connect from. The
registry stores only the SHA-256 of the token's secret.

`check_enrollment` is the whole decision for a hello that carries a token, in order:
the token is known and its secret matches (else one "unknown" message, whichever part was
wrong, so the id alone tells an attacker nothing), not revoked, not expired, not used up,
the address the gateway saw is inside one of its networks, and the hello's zone is the
token's or empty. Each refusal names its reason and what an operator does; the later ones
may name the token, because only a holder of its secret gets that far.

Whether a use is still left is decided twice: here, to give a clear message, and by the
store's conditional UPDATE inside the transaction that registers the collector, which is
what keeps two collectors racing for the last use from both winning.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime

from outpost import errors
from outpost.enrollment_token import EnrollmentToken, EnrollmentTokenFormatError, same_digest
from services.registry.domain import tokens
from services.registry.domain.pending_limits import remote_ip

PRINCIPAL_PREFIX = "enrollment-token:"
"""`state_changed_by`, the audit principal and `enrolled_by` name a token as this + its name."""
MAX_ZONE_CHARS = 256
MAX_CIDRS = 32
MAX_USES = 1_000_000
RETRY_AFTER_SECONDS = 300
"""What a refused collector is told to wait: a token refusal is not transient (an operator
fixes the token and restarts the collector), so it must not hammer the gateway."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EnrollmentTokenState(enum.StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"


@dataclass(frozen=True)
class EnrollmentTokenRecord:
    """What the registry knows of a token, without its secret's digest."""

    token_id: str
    name: str
    zone: str
    created_at: datetime
    created_by: str
    uses_allowed: int = 0
    """0: unlimited."""
    uses_used: int = 0
    cidrs: tuple[str, ...] = ()
    """Normalised networks ("10.0.0.0/8"); empty: any source address."""
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str = ""

    def state(self, now: datetime) -> EnrollmentTokenState:
        if self.revoked_at is not None:
            return EnrollmentTokenState.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return EnrollmentTokenState.EXPIRED
        if self.uses_allowed and self.uses_used >= self.uses_allowed:
            return EnrollmentTokenState.USED_UP
        return EnrollmentTokenState.VALID

    @property
    def principal(self) -> str:
        return principal(self.name)


@dataclass(frozen=True)
class StoredEnrollmentToken:
    record: EnrollmentTokenRecord
    digest: bytes = field(repr=False)


class Denial(enum.StrEnum):
    """Why a token did not enroll a collector (a metric label; the message says more)."""

    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
    USED_UP = "used_up"
    NETWORK = "network"
    ZONE = "zone"


@dataclass(frozen=True)
class EnrollmentDenied:
    denial: Denial
    message: str


def principal(name: str) -> str:
    return PRINCIPAL_PREFIX + name


def require_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise errors.InvalidArgument(
            f"enrollment token name {errors.brief(name)} must be 1-64 letters, digits or . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def require_zone(zone: str) -> str:
    """The zone is required: a token exists to put collectors into one."""
    zone = zone.strip()
    if not zone:
        raise errors.InvalidArgument("an enrollment token needs a zone (--zone): collectors it enrolls join it")
    if len(zone) > MAX_ZONE_CHARS or not zone.isprintable():
        raise errors.InvalidArgument(f"zone {errors.brief(zone)} must be 1-{MAX_ZONE_CHARS} printable characters")
    return zone


def require_uses(uses: int) -> int:
    if not 0 <= uses <= MAX_USES:
        raise errors.InvalidArgument(f"uses must be 0 (unlimited) to {MAX_USES}, not {uses}")
    return uses


def require_cidrs(cidrs: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Networks as an admin typed them, normalised ("10.1.2.3/8" -> "10.0.0.0/8"); duplicates dropped."""
    if len(cidrs) > MAX_CIDRS:
        raise errors.InvalidArgument(f"at most {MAX_CIDRS} networks (--cidr) per enrollment token")
    normalised: list[str] = []
    for text in cidrs:
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError as exc:
            raise errors.InvalidArgument(
                f"--cidr {errors.brief(text)} is not an IPv4 or IPv6 network like 10.0.0.0/8 or 2001:db8::/32"
            ) from exc
        if str(network) not in normalised:
            normalised.append(str(network))
    return tuple(normalised)


def expiry(now: datetime, seconds: int) -> datetime | None:
    """When a token created at `now` for `seconds` expires (0: never); the admin tokens' bounds."""
    return tokens.expiry(now, seconds)


def parse_presented(text: str) -> EnrollmentToken | None:
    """The hello's token, or None when it is not one (refused as unknown, never stored)."""
    try:
        return EnrollmentToken.parse(text)
    except EnrollmentTokenFormatError:
        return None


def check_enrollment(
    stored: StoredEnrollmentToken | None,
    presented: EnrollmentToken | None,
    *,
    remote_address: str,
    hello_zone: str,
    now: datetime,
) -> EnrollmentDenied | None:
    """May this token enroll a collector connecting from `remote_address` now? None: yes."""
    if stored is None or presented is None or not same_digest(stored.digest, presented.digest):
        shown = presented.token_id if presented is not None else "in the hello"
        return EnrollmentDenied(
            Denial.UNKNOWN,
            f"enrollment token {shown} is not known to this server (mistyped, or made for another server): "
            "ask an admin for a token (`outpostctl enrollment-tokens create NAME --zone ZONE`)",
        )
    token = stored.record
    state = token.state(now)
    if state is EnrollmentTokenState.REVOKED:
        assert token.revoked_at is not None
        return EnrollmentDenied(
            Denial.REVOKED,
            f"enrollment token '{token.name}' was revoked at {_iso(token.revoked_at)} by "
            f"{token.revoked_by or 'unknown'}: ask an admin for a new token, or to register this collector",
        )
    if state is EnrollmentTokenState.EXPIRED:
        assert token.expires_at is not None
        return EnrollmentDenied(
            Denial.EXPIRED,
            f"enrollment token '{token.name}' expired at {_iso(token.expires_at)}: ask an admin for a new token, "
            "or to register this collector",
        )
    if state is EnrollmentTokenState.USED_UP:
        return EnrollmentDenied(
            Denial.USED_UP,
            f"enrollment token '{token.name}' is used up (used {token.uses_used} of {token.uses_allowed}): "
            "ask an admin for a new token, or to register this collector",
        )
    if token.cidrs and not address_in(remote_address, token.cidrs):
        return EnrollmentDenied(
            Denial.NETWORK,
            f"enrollment token '{token.name}' admits collectors from {', '.join(token.cidrs)} only; this one "
            f"connected from {remote_address or 'an unknown address'}: use a token made for this network",
        )
    if hello_zone and hello_zone != token.zone:
        return EnrollmentDenied(
            Denial.ZONE,
            f"enrollment token '{token.name}' enrolls into zone '{token.zone}', but this collector says zone "
            f"'{hello_zone}': start it with --zone {token.zone}, or without --zone (the token's zone is used)",
        )
    return None


def used_up_now(token: EnrollmentTokenRecord) -> EnrollmentDenied:
    """The token lost the race for its last use between the check and the write."""
    used = token.uses_allowed
    return EnrollmentDenied(
        Denial.USED_UP,
        f"enrollment token '{token.name}' is used up (used {used} of {used}): "
        "ask an admin for a new token, or to register this collector",
    )


def address_in(remote_address: str, cidrs: tuple[str, ...]) -> bool:
    """Whether the gateway-reported address (host:port, [v6]:port, ::ffff:v4) is in one of `cidrs`."""
    address = remote_ip(remote_address)
    if address is None:
        return False
    return any(address in ipaddress.ip_network(cidr) for cidr in cidrs)


def name_taken(name: str) -> errors.AlreadyExists:
    return errors.AlreadyExists(
        f"an enrollment token named '{name}' exists and is not revoked; revoke it or choose another name"
    )


def not_found(name: str) -> errors.NotFound:
    return errors.NotFound(f"no enrollment token named '{name}' (outpostctl enrollment-tokens list --all)")


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")
