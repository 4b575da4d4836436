"""Group commit: the exclusive writes that arrive together share one transaction (ADR 0033).

Every change of a run appends an event, so it runs in an *exclusive* transaction
(`store.queries`: the event lock on PostgreSQL, one writer on SQLite); those
transactions run one after another anyway. When 1,000 runs fall due at once, 1,000
claims and 2,000 job updates queue for that lock, each paying a whole transaction
(connection, BEGIN, lock, COMMIT, a wake-up of every watcher) for one or two row
changes. Here they queue for a *batch* instead:

- `submit(work)` adds the call's work to the pending list and waits for its outcome. If
  no batch is being written, one starts at once (an idle service adds no delay); calls
  arriving while it is written wait for the next, which takes everything pending (at
  most `max_batch`). The batch size follows the load, with no timer.
- A batch is one exclusive transaction: the pending works in arrival order, then the
  pending claims together (`claims`: one read of the candidates of every claiming
  collector, instead of four reads per claim). One commit, one wake-up of the watchers.
- A work decides with what it reads in the transaction, so it sees every change made
  before it in the batch, exactly as if it had its own transaction after them. It may
  refuse (raise `OutpostError`) only *before* it writes: its caller gets the error, the
  others' changes commit. Any other error (the database) fails the whole batch; then
  each of its works runs again alone in its own transaction, so one bad call never
  fails the others and each caller gets its own outcome.

Claims that find nothing queued are answered from one read without the lock, as before
(most claims find nothing: the re-claim after every finished run, the claim at every
session start).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from outpost import errors
from services.scheduler import metrics
from services.scheduler.store.queries import SchedulerStore, Transaction
from services.scheduler.watch import WatchHub

log = structlog.get_logger(__name__)

T = TypeVar("T")

MAX_BATCH = 1000
"""Calls per transaction; more wait for the next batch (the statement sizes stay bounded)."""

Work = Callable[[Transaction], Awaitable[Any]]
ClaimsWork = Callable[[Transaction, Sequence[Any]], Awaitable[list[Any]]]


@dataclass
class _Pending:
    future: asyncio.Future[Any]
    work: Work | None = None
    claim: Any = None


@dataclass
class WriteBatches:
    """One per service process: every exclusive write of a job run goes through `submit`."""

    store: SchedulerStore
    hub: WatchHub
    claims: ClaimsWork
    """Decides a batch's claims in its transaction: one answer (or OutpostError) per claim."""
    claim_filter: Callable[[Sequence[Any]], Awaitable[list[Any]]]
    """Per claim, its answer when one read without the lock settles it (nothing queued for
    it), else None: it is decided in the transaction."""
    max_batch: int = MAX_BATCH
    _pending: list[_Pending] = field(default_factory=list)
    _writer: asyncio.Task[None] | None = None

    async def submit(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run `work` in the next batch's transaction; its result once committed."""
        result: T = await self._enqueue(_Pending(asyncio.get_running_loop().create_future(), work=work))
        return result

    async def claim(self, request: Any) -> Any:
        """Decide `request` with the next batch's other claims; the runs it got once committed."""
        return await self._enqueue(_Pending(asyncio.get_running_loop().create_future(), claim=request))

    async def _enqueue(self, item: _Pending) -> Any:
        self._pending.append(item)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="scheduler-write-batches")
        return await item.future

    async def _write_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                await self._write(batch)
            except Exception as exc:  # the database: each call again on its own
                if len(batch) == 1:
                    _settle(batch[0], exc)
                    continue
                log.warning("write_batch_failed", calls=len(batch), error=str(exc), error_type=type(exc).__name__)
                metrics.WRITE_BATCHES_SPLIT.inc()
                for item in batch:
                    try:
                        await self._write([item])
                    except Exception as alone:
                        _settle(item, alone)

    async def _write(self, batch: list[_Pending]) -> None:
        claims = [item for item in batch if item.work is None]
        if claims:
            early = await self.claim_filter([item.claim for item in claims])
            for item, answer in zip(claims, early, strict=True):
                if answer is not None:
                    _settle(item, answer)
            claims = [item for item, answer in zip(claims, early, strict=True) if answer is None]
        works = [item for item in batch if item.work is not None]
        if not (works or claims):
            return
        outcomes: list[tuple[_Pending, Any]] = []
        async with self.store.write(exclusive=True) as tx:
            for item in works:
                assert item.work is not None
                try:
                    outcomes.append((item, await item.work(tx)))
                except errors.OutpostError as exc:  # refused before it wrote
                    outcomes.append((item, exc))
            if claims:
                answers = await self.claims(tx, [item.claim for item in claims])
                outcomes += list(zip(claims, answers, strict=True))
            revision = tx.newest_revision
        metrics.WRITE_BATCH_CALLS.observe(len(outcomes))
        self.hub.notify(revision)
        for item, outcome in outcomes:
            _settle(item, outcome)


def _settle(item: _Pending, outcome: Any) -> None:
    if item.future.done():  # the caller gave up (deadline, cancelled): its change stands
        return
    if isinstance(outcome, BaseException):
        item.future.set_exception(outcome)
    else:
        item.future.set_result(outcome)
