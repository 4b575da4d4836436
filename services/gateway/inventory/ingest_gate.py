"""The gate every result batch commit passes: a limit on commits in flight and a breaker.

Theory of operation
-------------------
Commits from all sessions share one limiter: at most `max_in_flight` run at once (the
database's connection pool is the real bound; more only queue inside it). A session
waits up to `slot_wait` (default: the commit timeout) for a slot, then its batch is
throttled ("busy"): a session that waits longer stops answering heartbeats. The commit
itself runs for at most `commit_timeout`, so a hung database turns into a timeout, not
a hung session.

Every commit ends in one of three outcomes, and the session acts on it:

- `Committed` (new or a duplicate): ack it.
- `Rejected`: the batch can never be stored (invalid data, or a commit that crashed the
  same way `MAX_UNEXPECTED_FAILURES` times). Ack it anyway, count and log it: an unacked
  batch would be resent by the collector forever and hold a slot of its send window.
- `Throttled(retry_after_ms)`: not acked; the session sends `Throttle`, the collector
  keeps the batch spooled and resends it after `retry_after_ms`.

A retryable failure (`errors.Unavailable`: database down, connection killed, pool
exhausted; or the commit timeout) opens the breaker: for the cool-down every batch is
throttled without touching the database. The cool-down starts at 1 s, doubles with each
failure after the previous one ended, is capped at 30 s and is reset by the next good
commit. A failure of a commit that began before the breaker last opened, or while it is
open, adds nothing: one outage wave is one doubling, not one per session.
Retry times carry up to 25 % jitter so the collectors' resends do not arrive together.

A failure the store could not classify (an exception from our own code) does not open the
breaker, because nothing says the database is down; the session is throttled for the
initial cool-down so its collector resends, and after `MAX_UNEXPECTED_FAILURES` of the
same batch identity on this gateway the batch is rejected (a poison batch must not wedge
a collector's spool). See docs/adr/0010 "Backpressure".

Commits run in their own task, shielded from the session: a session cancelled mid-commit
(its connection dropped, the gateway stopping) lets the transaction finish or roll back
whole, and `close()` waits for those tasks before the engine is disposed. The task also
tells the breaker how the commit went before it frees its slot, so a batch that gets the
slot next already sees the breaker open.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from outpost import errors
from services.gateway import metrics

log = structlog.get_logger(__name__)

COOL_DOWN_CAP_SECONDS = 30.0
INITIAL_COOL_DOWN_SECONDS = 1.0
JITTER = 0.25
MAX_UNEXPECTED_FAILURES = 3
MAX_REMEMBERED_FAILURES = 1024
DEFAULT_MAX_IN_FLIGHT = 10
"""The inventory engine's pool holds 10 connections (+10 overflow): commits take at most
the pool, and the overflow stays free for the admin API's reads."""
DEFAULT_COMMIT_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class BatchKey:
    """A batch's identity: what failures are remembered by and logged with."""

    instance_uid: str
    job_run_id: str
    attempt: int
    sequence: int


@dataclass(frozen=True)
class Committed:
    duplicate: bool


@dataclass(frozen=True)
class Rejected:
    reason: str


@dataclass(frozen=True)
class Throttled:
    retry_after_ms: int
    reason: str


Outcome = Committed | Rejected | Throttled


class Breaker:
    """Doubling cool-down after retryable failures, reset by a success. Pure: time comes in.

    `cool_down` is the length of the current (or last) cool-down, 0 while healthy.
    """

    def __init__(self, initial: float = INITIAL_COOL_DOWN_SECONDS, cap: float = COOL_DOWN_CAP_SECONDS) -> None:
        self.initial = initial
        self.cap = cap
        self.cool_down = 0.0
        self._open_until = -math.inf
        self._opened_at = -math.inf

    def remaining(self, now: float) -> float:
        """Seconds until commits may be tried again; 0 when they may be tried now."""
        return max(0.0, self._open_until - now)

    def failed(self, started_at: float, now: float) -> bool:
        """A retryable failure of a commit begun at `started_at`; True if it opened the breaker."""
        if now < self._open_until or started_at < self._opened_at:
            return False
        self.cool_down = self.initial if self.cool_down == 0 else min(self.cool_down * 2, self.cap)
        self._opened_at = now
        self._open_until = now + self.cool_down
        return True

    def succeeded(self) -> bool:
        """A good commit closes the breaker; True if it had been failing."""
        recovered = self.cool_down > 0
        self.cool_down = 0.0
        self._open_until = -math.inf
        return recovered


class IngestGate:
    """Limits, times and classifies commits; see the module docstring."""

    def __init__(
        self,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        commit_timeout: float = DEFAULT_COMMIT_TIMEOUT_SECONDS,
        slot_wait: float | None = None,
        breaker: Breaker | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.commit_timeout = commit_timeout
        self.slot_wait = commit_timeout if slot_wait is None else slot_wait
        self.breaker = breaker or Breaker()
        self._clock = clock
        self._jitter = jitter
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[bool]] = set()
        self._unexpected: dict[BatchKey, int] = {}
        self._closed = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def commit(self, key: BatchKey, commit: Callable[[], Awaitable[bool]]) -> Outcome:
        """Run `commit` (True: the batch was new) under the limit and the breaker."""
        if self._closed:
            return self._throttle("closed", self.breaker.initial, "gateway shutting down; send to another gateway")
        remaining = self.breaker.remaining(self._clock())
        if remaining > 0:
            return self._throttle("cooling_down", remaining, "inventory database unavailable; cooling down")
        try:
            async with asyncio.timeout(self.slot_wait):
                await self._slots.acquire()
        except TimeoutError:
            return self._throttle("busy", self.breaker.initial, f"{self.max_in_flight} commits in flight; gateway busy")
        started = self._clock()
        remaining = self.breaker.remaining(started)
        if remaining > 0:  # it opened while this batch waited for a slot
            self._slots.release()
            return self._throttle("cooling_down", remaining, "inventory database unavailable; cooling down")
        task = asyncio.create_task(self._run(commit, started))
        self._tasks.add(task)
        metrics.COMMITS_IN_FLIGHT.inc()
        task.add_done_callback(self._finished)
        try:
            new = await asyncio.shield(task)
        except errors.InvalidArgument as exc:
            return self._reject(key, "invalid", str(exc))
        except (errors.Unavailable, TimeoutError):
            return self._throttle(
                "database_unavailable",
                max(self.breaker.remaining(self._clock()), self.breaker.initial),
                "inventory database unavailable; results stay in the spool",
            )
        except errors.OutpostError as exc:
            # The store raises only the two above; anything else is as unexpected as a bug.
            return self._unexpected_failure(key, exc)
        except Exception as exc:  # a pipeline stage: classify, count, log (never crash the session)
            return self._unexpected_failure(key, exc)
        self._unexpected.pop(key, None)
        metrics.BATCHES_COMMITTED.labels("new" if new else "duplicate").inc()
        return Committed(duplicate=not new)

    async def close(self, timeout: float) -> int:
        """Refuse new commits and wait up to `timeout` for those in flight; returns how many are left."""
        self._closed = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        return len(self._tasks)

    async def _run(self, commit: Callable[[], Awaitable[bool]], started: float) -> bool:
        """The commit's own task. The breaker learns the outcome here, before the slot is
        free for the next commit (and even when the session waiting for it is gone)."""
        timer = time.perf_counter()
        try:
            async with asyncio.timeout(self.commit_timeout):
                new = await commit()
        except (errors.Unavailable, TimeoutError) as exc:
            self._database_failed(started, exc)
            raise
        else:
            if self.breaker.succeeded():
                metrics.INGEST_COOL_DOWN_SECONDS.set(0)
                log.info("ingest_recovered")
            return new
        finally:
            self._slots.release()
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - timer)

    def _finished(self, task: asyncio.Task[bool]) -> None:
        self._tasks.discard(task)
        metrics.COMMITS_IN_FLIGHT.dec()
        if not task.cancelled():
            task.exception()  # retrieved here too, in case its session was cancelled meanwhile

    def _database_failed(self, started: float, exc: BaseException) -> None:
        kind = "timeout" if isinstance(exc, TimeoutError) else "unavailable"
        metrics.COMMIT_FAILURES.labels(kind).inc()
        if self.breaker.failed(started, self._clock()):
            metrics.INGEST_COOL_DOWN_SECONDS.set(self.breaker.cool_down)
            error = f"commit took longer than {self.commit_timeout:g}s" if kind == "timeout" else str(exc)
            log.warning("ingest_cooling_down", cool_down=self.breaker.cool_down, failure=kind, error=error)

    def _unexpected_failure(self, key: BatchKey, exc: Exception) -> Outcome:
        metrics.COMMIT_FAILURES.labels("unexpected").inc()
        failures = self._unexpected.pop(key, 0) + 1
        log.error(
            "batch_commit_crashed",
            job_run_id=key.job_run_id,
            attempt=key.attempt,
            sequence=key.sequence,
            failures=failures,
            exc_info=exc,
        )
        if failures >= MAX_UNEXPECTED_FAILURES:
            return self._reject(key, "unexpected", f"commit failed {failures} times: {type(exc).__name__}: {exc}")
        self._unexpected[key] = failures
        while len(self._unexpected) > MAX_REMEMBERED_FAILURES:
            del self._unexpected[next(iter(self._unexpected))]
        return self._throttle("commit_failed", self.breaker.initial, "the batch could not be committed; resend it")

    def _reject(self, key: BatchKey, kind: str, reason: str) -> Rejected:
        self._unexpected.pop(key, None)
        if kind == "invalid":
            metrics.COMMIT_FAILURES.labels(kind).inc()
        metrics.BATCHES_REJECTED.labels(kind).inc()
        log.warning(
            "batch_rejected", job_run_id=key.job_run_id, attempt=key.attempt, sequence=key.sequence, reason=reason
        )
        return Rejected(reason)

    def _throttle(self, kind: str, seconds: float, reason: str) -> Throttled:
        metrics.THROTTLES.labels(kind).inc()
        spread = self.breaker.cool_down or self.breaker.initial
        return Throttled(round((seconds + JITTER * spread * self._jitter()) * 1000), reason)
