"""Why queued runs wait: asked of the registry every few seconds, kept with the runs.

`refresh()` reads which targets queued runs wait for (one row per distinct collector or
zone, not per run) and how many runs each collector holds, asks the registry for its
collectors once, decides each target's reason (`domain.waiting`) and writes it with one
conditional UPDATE per target that changed. Nothing here changes a run's state, so it
takes no event lock and appends no event; replicas doing the same write the same text.

A registry that cannot be reached leaves the reasons as they were (logged once per
outage): `jobs list` then shows the last known reason rather than none.
"""

from __future__ import annotations

import asyncio

import structlog

from outpost import errors
from services.scheduler.clock import Clock, utc_now
from services.scheduler.domain import waiting as rules
from services.scheduler.registry_client import ListCollectors
from services.scheduler.store.queries import SchedulerStore

log = structlog.get_logger(__name__)

REFRESH_SECONDS = 5.0


class WaitingReasons:
    def __init__(self, store: SchedulerStore, collectors: ListCollectors, clock: Clock = utc_now) -> None:
        self._store = store
        self._collectors = collectors
        self._now = clock
        self._unreachable = False

    async def refresh(self) -> int:
        """Decide and store every waiting target's reason now; how many runs changed."""
        async with self._store.read() as tx:
            targets = await tx.queued_targets()
            if not targets:
                return 0
            active = await tx.active_counts()
        known = await self._collectors()
        now = self._now()
        reasons = {target: rules.waiting_reason(*target, known, active, now) for target in targets}
        changed = 0
        async with self._store.write(exclusive=False) as tx:
            for (collector, zone), reason in reasons.items():
                changed += await tx.save_waiting_reason(collector, zone, reason.text, reason.cause.value)
        if changed:
            log.info("waiting_reasons_updated", runs=changed, targets=len(targets))
        return changed

    async def run(self, interval: float = REFRESH_SECONDS) -> None:
        """Refresh every `interval` seconds until cancelled; failures are logged, never fatal."""
        while True:
            try:
                await self.refresh()
                if self._unreachable:
                    log.info("waiting_reasons_resumed")
                self._unreachable = False
            except errors.Unavailable as exc:
                if not self._unreachable:
                    log.warning("waiting_reasons_unavailable", error=str(exc))
                self._unreachable = True
            except Exception as exc:
                log.warning("waiting_reasons_failed", error=str(exc), error_type=type(exc).__name__)
            await asyncio.sleep(interval)
