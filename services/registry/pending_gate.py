"""The pending bounds at work: first contacts checked against them, and refusals' evidence.

`domain.pending_limits` says what the bounds are; this keeps the counts they are checked
against. The authoritative check runs inside the exclusive transaction that would store
the newcomer (`check`), so replicas never overshoot. Its counts are kept for
`CACHE_SECONDS`, and while they say "full", a newcomer is refused after one read that
tells it is not known (`refuse_early`), without a write transaction: during a flood of
fresh keys the counts are read about once a second per replica, and nothing is written.
An admin who makes room on this replica clears them (`forget`); on another replica, the
newcomer's next retry after `retry_after_seconds` gets in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from services.registry import metrics
from services.registry.domain import authentication as auth
from services.registry.domain.pending_limits import (
    EvidenceBudget,
    PendingCounts,
    PendingLimits,
    PendingRefusal,
    check_pending_room,
    source_network,
)
from services.registry.store.queries import RegistryStore, Transaction

CACHE_SECONDS = 1.0


class PendingGate:
    def __init__(
        self,
        limits: PendingLimits,
        *,
        evidence: EvidenceBudget | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._evidence = evidence or EvidenceBudget()
        self._monotonic = monotonic
        self._counts: PendingCounts | None = None
        self._read_at = 0.0

    async def refuse_early(self, store: RegistryStore, attempt: auth.AuthAttempt) -> auth.Refused | None:
        """While the counts last read say a bound is reached, refuse a newcomer on one read.

        None means: decide as usual (the bounds may have room, or the collector is known).
        A read, not a write transaction (on SQLite: no wait for the writer lock), so a flood
        of fresh keys neither writes nor queues known collectors' handshakes behind it.
        """
        if self._counts is None or self._monotonic() - self._read_at > CACHE_SECONDS:
            return None
        refusal = check_pending_room(self.limits, self._counts, source_network(attempt.remote_address))
        if refusal is None:
            return None
        async with store.read() as tx:
            known = await tx.collector_by_uid(attempt.hello.instance_uid)
        return None if known is not None else self._refused(refusal)

    async def check(self, tx: Transaction, remote_address: str) -> auth.Refused | None:
        """The authoritative check, in the exclusive transaction that stores the newcomer."""
        network = source_network(remote_address)
        counts = PendingCounts.of(await tx.pending_addresses(self.limits.max_pending))
        refusal = check_pending_room(self.limits, counts, network)
        self._counts = counts if refusal is not None else counts.plus(network)
        self._read_at = self._monotonic()
        return self._refused(refusal)

    def forget(self) -> None:
        """Pending collectors were registered or removed here: read the counts again."""
        self._counts = None

    def keep_evidence(self, refused: auth.Refused, now: datetime) -> bool:
        """May the refusal of an unknown collector be written down? Counted when not."""
        if self._evidence.allow(now):
            return True
        metrics.REFUSALS_UNRECORDED.labels(refused.refusal.value).inc()
        return False

    def _refused(self, refusal: PendingRefusal | None) -> auth.Refused | None:
        if refusal is None:
            return None
        metrics.PENDING_REFUSED.labels(refusal.scope).inc()
        return auth.Refused(auth.Refusal.PENDING_LIMIT, refusal.message, refusal.retry_after_seconds)
