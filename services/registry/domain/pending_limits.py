"""How many collectors may wait as pending, in all and per source network.

Anyone who can reach a gateway can announce a fresh key, and every announced key is stored
as pending and shown to admins (and broadcast to every gateway). So first contacts are
bounded: at most `max_pending` pending collectors in all, and at most
`max_per_network` from one source network (an IPv4 /24 or an IPv6 /64, where one site's
collectors, or one attacker's addresses, usually sit together). A newcomer beyond either
bound is refused with a message saying which bound and what an admin does about it.

The bounds never touch what is already known: registered (enabled, disabled) collectors
do not count and are never pushed out, and a pending collector that reconnects is known,
so it is never refused by them (the registry checks these bounds only on first contact).

A refused newcomer must not cost a database write per attempt, or a flood of fresh keys
becomes a flood of writes: refusals of unknown collectors are recorded as evidence (for
`collectors explain`) within an `EvidenceBudget`, and counted beyond it.
Everything here is pure: times are passed in.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

IPV4_PREFIX = 24
IPV6_PREFIX = 64
UNKNOWN_NETWORK = "an unknown network"

RETRY_AFTER_SECONDS = 60
"""What a refused newcomer is told to wait: long enough not to hammer, short enough to get
in soon after an admin made room (the collector backs off further by itself)."""

EVIDENCE_PER_MINUTE = 60
"""Refusals of unknown collectors recorded per minute and replica; the rest are counted."""


@dataclass(frozen=True)
class PendingLimits:
    max_pending: int = 1000
    max_per_network: int = 100
    retry_after_seconds: int = RETRY_AFTER_SECONDS


def remote_ip(remote_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a gateway-reported address; None when it is not one.

    Accepts what gateways report: "host:port", "[v6]:port", "v6:port" (no brackets), a bare
    host; an IPv4-mapped IPv6 address ("::ffff:10.0.0.1") is the IPv4 address it maps.
    """
    text = remote_address.strip()
    candidates = [text]
    if text.startswith("[") and "]" in text:
        candidates.insert(0, text[1 : text.index("]")])
    elif ":" in text:
        candidates.append(text.rsplit(":", 1)[0])
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate.split("%", 1)[0])
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped
        return address
    return None


def source_network(remote_address: str) -> str:
    """The network a gateway-reported address belongs to, as "203.0.113.0/24" or "2001:db8::/64".

    Addresses are read as `remote_ip` reads them; anything else is one shared bucket.
    """
    address = remote_ip(remote_address)
    if address is None:
        return UNKNOWN_NETWORK
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass(frozen=True)
class PendingCounts:
    """Pending collectors as read from the database: how many, and per source network."""

    total: int
    by_network: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, remote_addresses: Iterable[str]) -> PendingCounts:
        by_network = Counter(source_network(address) for address in remote_addresses)
        return cls(sum(by_network.values()), by_network)

    def plus(self, network: str) -> PendingCounts:
        """These counts with one more pending collector from `network`."""
        by_network = Counter(self.by_network)
        by_network[network] += 1
        return PendingCounts(self.total + 1, by_network)


@dataclass(frozen=True)
class PendingRefusal:
    """A newcomer refused by a bound; `scope` is "total" or "network" (a metric label)."""

    scope: str
    message: str
    retry_after_seconds: int


def check_pending_room(limits: PendingLimits, counts: PendingCounts, network: str) -> PendingRefusal | None:
    """May one more collector from `network` be stored as pending?"""
    advice = "an admin must register or remove some (`outpostctl collectors list --state pending`)"
    if counts.total >= limits.max_pending:
        return PendingRefusal(
            "total",
            f"too many collectors waiting for registration ({counts.total}, the registry's --max-pending "
            f"is {limits.max_pending}); {advice}",
            limits.retry_after_seconds,
        )
    waiting = counts.by_network.get(network, 0)
    if waiting >= limits.max_per_network:
        return PendingRefusal(
            "network",
            f"too many collectors waiting for registration from {network} ({waiting}, the registry's "
            f"--max-pending-per-network is {limits.max_per_network}); {advice}",
            limits.retry_after_seconds,
        )
    return None


@dataclass
class EvidenceBudget:
    """A token bucket: at most `per_minute` records a minute, `per_minute` at once."""

    per_minute: int = EVIDENCE_PER_MINUTE
    _tokens: float = field(init=False)
    _at: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.per_minute)

    def allow(self, now: datetime) -> bool:
        if self._at is not None:
            elapsed = max(0.0, (now - self._at) / timedelta(minutes=1))
            self._tokens = min(float(self.per_minute), self._tokens + elapsed * self.per_minute)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
