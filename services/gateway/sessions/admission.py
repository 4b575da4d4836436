"""Who may start a handshake: bounds on unauthenticated connections and failed handshakes.

Unauthenticated connections cost memory and a registry call each, so the gateway caps
how many are in the handshake at once (`try_begin`/`end`).

Failed handshakes are counted in fixed windows, in two ledgers, so that collectors behind
one NAT (one remote address) cannot lock each other out:

- per (address, collector key), for refusals after a proof that verified: only the holder
  of a private key can fail under its public key, so one misconfigured collector (wrong
  password, reinstalled) is refused after `max_per_key` failures while the others behind
  the same address carry on;
- per address, for every failure (bad proofs, protocol errors, and the refusals above):
  a much higher ceiling (`max_per_address`) that only a flood of garbage reaches.

A blocked attempt is refused with the time until its window ends (`retry_after`), so a
collector that honours it gets in on its next try. Blocked attempts are not failures: they
do not extend the block. Each ledger keeps at most `max_tracked` entries, the least
recently failed forgotten first (`forgotten` counts them: a bound hit is never silent).
Pure: the caller passes `now`, read from `clock` (monotonic seconds; tests move it).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

MAX_TRACKED = 10_000


@dataclass(frozen=True)
class FailureLimits:
    max_per_key: int = 10
    """Failures after a valid proof, per (address, collector key) and window."""
    max_per_address: int = 200
    """Failures of any kind per remote address and window: the ceiling for garbage."""
    window: float = 60.0
    """Seconds of a counting window; a blocked key or address is let in when it ends."""
    max_tracked: int = MAX_TRACKED


@dataclass
class FailureLedger:
    """Failures per key in fixed windows, bounded in size (least recently failed go first)."""

    limit: int
    window: float
    max_tracked: int = MAX_TRACKED
    forgotten: int = 0
    _windows: OrderedDict[Hashable, tuple[float, int]] = field(default_factory=OrderedDict)

    def retry_after(self, key: Hashable, now: float) -> float:
        """Seconds until `key` may try again; 0 when it is not blocked."""
        entry = self._windows.get(key)
        if entry is None:
            return 0.0
        started, count = entry
        left = started + self.window - now
        return left if left > 0 and count >= self.limit else 0.0

    def record(self, key: Hashable, now: float) -> None:
        started, count = self._windows.pop(key, (now, 0))
        if now - started >= self.window:
            started, count = now, 0
        self._windows[key] = (started, count + 1)
        while len(self._windows) > self.max_tracked:
            self._windows.popitem(last=False)
            self.forgotten += 1

    def __len__(self) -> int:
        return len(self._windows)


@dataclass(frozen=True)
class Blocked:
    """A refusal for too many failures: which ledger, and whole seconds until it lets in."""

    scope: str  # "address" or "key"
    retry_after: int

    @property
    def message(self) -> str:
        what = "this address" if self.scope == "address" else "this collector at this address"
        return f"too many failed handshakes from {what}; try again in {self.retry_after} s"


def _blocked(scope: str, seconds: float) -> Blocked | None:
    return Blocked(scope, max(1, math.ceil(seconds))) if seconds > 0 else None


@dataclass
class Admission:
    max_unauthenticated: int = 1000
    limits: FailureLimits = field(default_factory=FailureLimits)
    unauthenticated: int = 0
    clock: Callable[[], float] = time.monotonic
    by_address: FailureLedger = field(init=False)
    by_key: FailureLedger = field(init=False)

    def __post_init__(self) -> None:
        limits = self.limits
        self.by_address = FailureLedger(limits.max_per_address, limits.window, limits.max_tracked)
        self.by_key = FailureLedger(limits.max_per_key, limits.window, limits.max_tracked)

    def try_begin(self) -> bool:
        if self.unauthenticated >= self.max_unauthenticated:
            return False
        self.unauthenticated += 1
        return True

    def end(self) -> None:
        self.unauthenticated -= 1

    def address_blocked(self, host: str, now: float) -> Blocked | None:
        """Checked when a connection opens: has this address failed too often?"""
        return _blocked("address", self.by_address.retry_after(host, now))

    def key_blocked(self, host: str, public_key: bytes, now: float) -> Blocked | None:
        """Checked once the proof verified, before asking the registry."""
        return _blocked("key", self.by_key.retry_after((host, public_key), now)) or self.address_blocked(host, now)

    def record_garbage(self, host: str, now: float) -> None:
        """A failure that proves no identity (bad proof, protocol error): the address pays."""
        self.by_address.record(host, now)

    def record_refused(self, host: str, public_key: bytes, now: float) -> None:
        """The registry refused a proven key: that key at that address pays, and the address."""
        self.by_key.record((host, public_key), now)
        self.by_address.record(host, now)

    @property
    def forgotten(self) -> int:
        return self.by_address.forgotten + self.by_key.forgotten


def host_of(remote_address: str) -> str:
    """ "203.0.113.7:5000" -> "203.0.113.7"; "[::1]:5000" and "[::1]" -> "::1"; "::1:5000" -> "::1".

    Without a port (a hop a trusted proxy forwarded, ADR 0026) an address is its host.
    """
    if remote_address.startswith("[") and "]" in remote_address:
        return remote_address[1 : remote_address.index("]")]
    host = remote_address.rsplit(":", 1)[0] if ":" in remote_address else remote_address
    return host.strip("[]")
