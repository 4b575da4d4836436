"""WatchDispatch: list-then-watch over the dispatch log, woken in-process and by polling.

Theory of operation
-------------------
The `dispatch_events` table is the single source of truth: every change of a job run
(created, claimed, started, progressed, finished, cancelled, requeued) and of the
settings appends one row, in the same transaction as the change, whose `revision`
orders it globally (`store.queries` explains why revisions commit in order). A watch
is a cursor into that table:

- `since == 0`: the watcher starts now; it gets a BOOKMARK carrying the newest revision,
  then every event after it.
- `since > 0`: it reconnects after a break; it gets every event after `since` in order,
  then a BOOKMARK (it has caught up), then new ones.

An event carries the run's *current* state, read when the event is sent, not a copy
from when it was written: a gateway acts on what is true now. So within one page only
the newest event of each run (and of the settings) is sent; the older ones would say the
same thing. Revisions still only grow, and the newest of the page is always sent.

Each watcher reads pages of at most `page_size` events straight from the database, so
memory does not grow with the number of events or a slow watcher (gRPC flow control
pushes back on `yield`). There are no per-watcher queues to overflow.

Waking up. `WatchHub.notify(revision)` is called after this replica commits a change and
wakes every watcher at once. Other replicas' writes (same PostgreSQL) are noticed by one
poller per replica reading `max(revision)` every `poll_interval` (250 ms). A BOOKMARK is
also sent every `bookmark_interval` of silence: a keepalive saying the cursor is current.

`close()` ends every watch cleanly before the gRPC server stops, so gateways re-open
theirs on another replica right away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import structlog

from services.scheduler import metrics
from services.scheduler.domain.dispatch import DispatchEvent, EventKind
from services.scheduler.store.queries import SchedulerStore

log = structlog.get_logger(__name__)


class WatchHub:
    """Shared wake-up state for this replica's watchers, plus the cross-replica poller."""

    def __init__(
        self,
        store: SchedulerStore,
        *,
        poll_interval: float = 0.25,
        bookmark_interval: float = 10.0,
        page_size: int = 500,
    ) -> None:
        self._store = store
        self._poll_interval = poll_interval
        self._bookmark_interval = bookmark_interval
        self._page_size = page_size
        self._newest = 0
        self._changed = asyncio.Event()
        self._closed = False
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._newest = await self._store.newest_revision()
        self._poller = asyncio.create_task(self._poll_forever(), name="scheduler-watch-poller")

    def notify(self, revision: int) -> None:
        """A change with `revision` is committed: wake every watcher now."""
        if revision > self._newest:
            self._newest = revision
            self._wake()

    async def close(self) -> None:
        """End every watch (their streams finish) and stop polling."""
        self._closed = True
        self._wake()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def watch(self, since_revision: int) -> AsyncIterator[DispatchEvent]:
        """Events after `since_revision` (see the module docstring), until close or cancel."""
        metrics.WATCHERS.inc()
        log.info("watch_opened", since_revision=since_revision)
        try:
            async for event in self._watch(since_revision):
                yield event
        finally:
            metrics.WATCHERS.dec()
            log.info("watch_closed")

    async def _watch(self, since: int) -> AsyncIterator[DispatchEvent]:
        cursor = since
        if since > 0:
            while not self._closed:
                page = await self._store.events_after(cursor, self._page_size)
                for event in newest_per_subject(page):
                    yield event
                if page:
                    cursor = page[-1].revision
                if len(page) < self._page_size:
                    break
        if cursor == since:
            # Nothing after `since`: the newest revision may be lower (a cursor from a
            # database that was since replaced); the bookmark tells the watcher so.
            cursor = await self._store.newest_revision()
        self._newest = max(self._newest, cursor)
        yield _bookmark(cursor)
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + self._bookmark_interval
        while not self._closed:
            changed = self._changed
            if self._newest <= cursor:
                woke = await _wait(changed, quiet_until - loop.time())
                if not woke and not self._closed:
                    yield _bookmark(cursor)
                    quiet_until = loop.time() + self._bookmark_interval
                continue
            page = await self._store.events_after(cursor, self._page_size)
            for event in newest_per_subject(page):
                yield event
            if page:
                cursor = page[-1].revision
                quiet_until = loop.time() + self._bookmark_interval
            else:
                # Told of a revision not yet visible to us; look again shortly.
                await _wait(changed, self._poll_interval)

    async def _poll_forever(self) -> None:
        """Notice other replicas' commits; survive database hiccups with a slower retry."""
        delay = self._poll_interval
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                newest = await self._store.newest_revision()
            except Exception as exc:
                log.warning("watch_poll_failed", error=str(exc))
                delay = min(delay * 2, 5.0)
                continue
            delay = self._poll_interval
            self.notify(newest)

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def newest_per_subject(page: Sequence[DispatchEvent]) -> list[DispatchEvent]:
    """The page without events a later one in it supersedes (same run, or settings).

    Events carry current state, so an older event of the same subject says nothing the
    newer one does not. Events whose run is gone carry nothing and are dropped.
    """
    newest: dict[str, int] = {}
    for event in page:
        newest[_subject(event)] = event.revision
    return [
        event
        for event in page
        if newest[_subject(event)] == event.revision and (event.kind is not EventKind.JOB_RUN or event.job_run)
    ]


def _subject(event: DispatchEvent) -> str:
    if event.kind is EventKind.JOB_RUN:
        return f"run:{event.job_run.id if event.job_run else event.revision}"
    return event.kind.value


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    if timeout <= 0:
        return event.is_set()
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


def _bookmark(revision: int) -> DispatchEvent:
    return DispatchEvent(revision=revision, kind=EventKind.BOOKMARK)
