"""ChangeFeed: list-then-watch over an append-only events table, woken in-process and by polling.

Theory of operation
-------------------
The service's events table is the single source of truth: every change appends one row,
in the same transaction as the change, whose `revision` orders it globally (each
service's `store.queries` explains why revisions commit in order). A watch is just a
cursor into that table:

- `since == 0`: the watcher has listed the current state (or starts now); it gets a
  BOOKMARK carrying the newest revision, then every event after it.
- `since > 0`: it reconnects after a break; it gets every event after `since` in order,
  then a BOOKMARK (it has caught up), then new ones.

A feed whose table holds each item's *current state* (a row per item, its revision
moved on every change) sets `replay_from_start`: then `since == 0` replays every row
before the first BOOKMARK, which is the "list" of list-then-watch in one stream.

Each watcher reads pages of at most `page_size` events straight from the database, so
memory does not grow with the number of events or the slowness of a watcher (gRPC
flow control pushes back on `yield`). There are no per-watcher queues to overflow. A
service may override `page_filter` that drops events of a page a later one supersedes; the
cursor still advances to the page's last revision.

Waking up. `ChangeFeed.notify(revision)` is called after this replica commits a change,
which wakes every watcher at once. Another replica's writes (same PostgreSQL) are
noticed by one poller per replica reading `max(revision)`. On PostgreSQL the poller is
woken by LISTEN/NOTIFY (`outpost.pg_listen`: a trigger notifies when a writing
transaction commits), so it reads only when something changed, plus a safety read every
`listen_poll_interval` (5 s). While the listening connection is down, and on SQLite, it
reads every `poll_interval` (250 ms) instead. Either way a change reaches every gateway
well within a second wherever it was made, and an idle control plane leaves the
database idle.
A BOOKMARK is also sent every `bookmark_interval` of silence: a keepalive that tells
the watcher its cursor is still current.

`close()` ends every watch cleanly (the streams finish) before the gRPC server stops,
so gateways re-open their watch on another replica right away.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import ClassVar, Generic, Protocol, TypeVar

import structlog
from prometheus_client import Gauge

from outpost.backoff import Backoff
from outpost.pg_listen import ChannelListener

log = structlog.get_logger(__name__)

POLL_RETRY_MAX_SECONDS = 5.0


class Revisioned(Protocol):
    """An event: anything with its place in the global order."""

    @property
    def revision(self) -> int: ...


E = TypeVar("E", bound=Revisioned)
E_co = TypeVar("E_co", bound=Revisioned, covariant=True)


class EventStore(Protocol[E_co]):
    """The two reads a feed needs from a service's store."""

    async def newest_revision(self) -> int: ...

    async def events_after(self, since: int, limit: int, /) -> Sequence[E_co]: ...


class ChangeFeed(ABC, Generic[E]):
    """Shared wake-up state for this replica's watchers, plus the cross-replica poller.

    A service subclasses it once: `task_name` names the poller task, `watchers` is the
    gauge of open streams, `bookmark` builds the service's BOOKMARK event and
    `page_filter` (optional) drops events a later one in the same page supersedes.
    """

    task_name: ClassVar[str]
    watchers: ClassVar[Gauge]
    replay_from_start: ClassVar[bool] = False

    def __init__(
        self,
        store: EventStore[E],
        *,
        poll_interval: float = 0.25,
        bookmark_interval: float = 10.0,
        page_size: int = 500,
        listener: ChannelListener | None = None,
        listen_poll_interval: float = 5.0,
    ) -> None:
        self._store = store
        self._poll_interval = poll_interval
        self._listener = listener
        self._listen_poll_interval = max(poll_interval, listen_poll_interval)
        self._poke = asyncio.Event()
        self._bookmark_interval = bookmark_interval
        self._page_size = page_size
        self._newest = 0
        self._changed = asyncio.Event()
        self._closed = False
        self._poller: asyncio.Task[None] | None = None

    @abstractmethod
    def bookmark(self, revision: int) -> E:
        """The event telling a watcher its cursor is current at `revision`."""

    def page_filter(self, page: Sequence[E]) -> Iterable[E]:
        """The events of `page` to send; all of them unless a service says otherwise."""
        return page

    async def start(self) -> None:
        self._newest = await self._store.newest_revision()
        self._poller = asyncio.create_task(self._poll_forever(), name=self.task_name)
        if self._listener is not None:
            self._listener.start(self._poke.set)

    @property
    def listening(self) -> bool:
        """True while database notifications wake the poller (PostgreSQL, connected)."""
        return self._listener is not None and self._listener.listening

    def notify(self, revision: int) -> None:
        """A change with `revision` is committed: wake every watcher now."""
        if revision > self._newest:
            self._newest = revision
            self._wake()

    async def close(self) -> None:
        """End every watch (their streams finish) and stop polling."""
        self._closed = True
        self._wake()
        if self._listener is not None:
            await self._listener.close()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def watch(self, since_revision: int) -> AsyncIterator[E]:
        """Events after `since_revision` (see the module docstring), until close or cancel."""
        self.watchers.inc()
        log.info("watch_opened", since_revision=since_revision)
        try:
            async for event in self._watch(since_revision):
                yield event
        finally:
            self.watchers.dec()
            log.info("watch_closed")

    async def _watch(self, since: int) -> AsyncIterator[E]:
        cursor = since
        if since > 0 or self.replay_from_start:
            while not self._closed:
                page = await self._store.events_after(cursor, self._page_size)
                for event in self.page_filter(page):
                    yield event
                if page:
                    cursor = page[-1].revision
                if len(page) < self._page_size:
                    break
        if cursor == since:
            # Nothing after `since`. A fresh watcher starts at the newest revision. A
            # resumed one moves only *back*, to a lower newest revision (its cursor came
            # from a database that was since replaced; the bookmark tells it so): moving
            # forward would skip an event committed between the page read and this one.
            newest = await self._store.newest_revision()
            if (since == 0 and not self.replay_from_start) or newest < since:
                cursor = newest
        self._newest = max(self._newest, cursor)
        yield self.bookmark(cursor)
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + self._bookmark_interval
        while not self._closed:
            changed = self._changed
            if self._newest <= cursor:
                woke = await _wait(changed, quiet_until - loop.time())
                if not woke and not self._closed:
                    yield self.bookmark(cursor)
                    quiet_until = loop.time() + self._bookmark_interval
                continue
            page = await self._store.events_after(cursor, self._page_size)
            for event in self.page_filter(page):
                yield event
            if page:
                cursor = page[-1].revision
                quiet_until = loop.time() + self._bookmark_interval
            else:
                # Told of a revision not yet visible to us; look again shortly.
                await _wait(changed, self._poll_interval)

    async def _poll_forever(self) -> None:
        """Notice other replicas' commits; survive database hiccups with a slower retry.

        A notification (or the listener coming back) pokes it awake at once; otherwise it
        reads after the fast interval, or the slow one while notifications are flowing.
        After a failed poll the next waits a capped full-jitter backoff, never less than
        the poll interval, so replicas that lost the same database do not return together.
        """
        backoff = Backoff(min(2 * self._poll_interval, POLL_RETRY_MAX_SECONDS), POLL_RETRY_MAX_SECONDS)
        delay = self._poll_interval
        while not self._closed:
            if self.listening and delay == self._poll_interval:
                delay = self._listen_poll_interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._poke.wait()
            self._poke.clear()
            try:
                newest = await self._store.newest_revision()
            except Exception as exc:
                log.warning("watch_poll_failed", error=str(exc))
                delay = max(self._poll_interval, backoff.next_delay())
                continue
            backoff.reset()
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
