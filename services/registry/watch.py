"""WatchCollectors: list-then-watch over the change log, woken in-process and by polling.

Theory of operation
-------------------
The `collector_events` table is the single source of truth: every state change and
removal appends one row whose `revision` orders it globally (see `store.queries` for
why revisions commit in order). A watch is just a cursor into that table:

- `since == 0`: the watcher has listed the current state; it gets a BOOKMARK carrying the
  newest revision, then every event after it.
- `since > 0`: it reconnects after a break; it gets every event after `since` in order,
  then a BOOKMARK (it has caught up), then new ones.

Each watcher reads pages of at most `page_size` events straight from the database, so
memory does not grow with the number of events or the slowness of a watcher (gRPC
flow control pushes back on `yield`). There are no per-watcher queues to overflow.

Waking up. `WatchHub.notify(revision)` is called after this replica commits a change,
which wakes every watcher at once. Another replica's writes (same PostgreSQL) are
noticed by one poller per replica reading `max(revision)` every `poll_interval`
(250 ms), so a change reaches every gateway well within a second wherever it was made.
A BOOKMARK is also sent every `bookmark_interval` of silence: a keepalive that tells
the watcher its cursor is still current.

`close()` ends every watch cleanly (the streams finish) before the gRPC server stops,
so gateways re-open their watch on another replica right away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from services.registry import metrics
from services.registry.domain.collectors import CollectorEvent, EventKind
from services.registry.store.queries import RegistryStore

log = structlog.get_logger(__name__)


class WatchHub:
    """Shared wake-up state for this replica's watchers, plus the cross-replica poller."""

    def __init__(
        self,
        store: RegistryStore,
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
        self._poller = asyncio.create_task(self._poll_forever(), name="registry-watch-poller")

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

    async def watch(self, since_revision: int) -> AsyncIterator[CollectorEvent]:
        """Events after `since_revision` (see the module docstring), until close or cancel."""
        metrics.WATCHERS.inc()
        log.info("watch_opened", since_revision=since_revision)
        try:
            async for event in self._watch(since_revision):
                yield event
        finally:
            metrics.WATCHERS.dec()
            log.info("watch_closed")

    async def _watch(self, since: int) -> AsyncIterator[CollectorEvent]:
        cursor = since
        if since > 0:
            while not self._closed:
                page = await self._store.events_after(cursor, self._page_size)
                for event in page:
                    yield event
                    cursor = event.revision
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
            for event in page:
                yield event
                cursor = event.revision
            if page:
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


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    if timeout <= 0:
        return event.is_set()
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


def _bookmark(revision: int) -> CollectorEvent:
    return CollectorEvent(revision=revision, kind=EventKind.BOOKMARK)
