"""Keep a server-streaming watch open, resume it from the newest revision seen, re-read on gaps.

List-then-watch, as Kubernetes does: the first bookmark says where the peer's history
stands; every later (re)connection resumes from the newest revision seen, so a change
made while the watch was broken is replayed, never missed. The gateway serves collectors
only after both of its watches (registry collectors, scheduler dispatch) are `ready`,
so no decision can fall between a handshake and the watch.

Resync. Some state is not an event stream the watch can replay: a watch opened at the
newest revision replays nothing (the dispatch watch of a gateway that just started never
sees the settings event of a change made last week), and a peer whose history went back
(its database replaced or restored: a bookmark *below* our cursor) lost events for
good. So after every gap — the first bookmark of each (re)connection, and any bookmark
that moves the cursor back — the optional `resync` reads that state whole (the "list" of
list-then-watch) before any later event is applied; events after it carry newer state,
so nothing read is overwritten by older news. `ready` is set only after the first
resync succeeded. A resync that fails ends the attempt (`watch_resync_failed`) and the
watch reconnects after the backoff, so the read is retried until it succeeds, while what
was read before stays in force.

Between attempts it waits a capped full-jitter backoff (`outpost.backoff`), reset by
progress (an item received; for the first bookmark of an attempt, only once its resync
succeeded), so the loop survives a peer that stays down for days. Any error of one
attempt is logged and retried: the watch is what keeps this gateway's decisions current,
and a dead watch task would leave health saying SERVING on stale state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog

from outpost import errors
from outpost.backoff import Backoff

log = structlog.get_logger(__name__)

BACKOFF_INITIAL_SECONDS = 0.4
"""The window after the first failure; it doubles with each further one."""
BACKOFF_MAX_SECONDS = 5.0


class ResyncFailed(Exception):
    """The state read after a gap could not be read: this attempt ends, the next retries it."""


class ResumableWatch:
    """Run `open_stream(since)` forever; hand every non-bookmark item to `apply`.

    `resync`, when given, is awaited after every gap (see the module docstring).
    """

    def __init__(
        self,
        name: str,
        open_stream: Callable[[int], AsyncIterator[Any]],
        apply: Callable[[Any], None],
        bookmark_type: type,
        *,
        resync: Callable[[], Awaitable[None]] | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self._open_stream = open_stream
        self._apply = apply
        self._bookmark_type = bookmark_type
        self._resync = resync
        self._backoff = backoff or Backoff(BACKOFF_INITIAL_SECONDS, BACKOFF_MAX_SECONDS)
        self._sleep = sleep
        self.revision = 0
        self.resyncs = 0
        """Successful resyncs so far (the first one is at the first bookmark)."""
        self.ready = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._attempt()
                log.warning("watch_ended", watch=self.name, revision=self.revision)
            except ResyncFailed as exc:
                log.warning("watch_resync_failed", watch=self.name, revision=self.revision, error=str(exc))
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "watch_failed", watch=self.name, code=exc.code().name, details=exc.details(), revision=self.revision
                )
            except errors.OutpostError as exc:  # a client that maps statuses at its edge
                log.warning(
                    "watch_failed",
                    watch=self.name,
                    code=exc.status or type(exc).__name__,
                    details=exc.details if exc.status else str(exc),
                    revision=self.revision,
                )
            except Exception:
                log.exception("watch_crashed", watch=self.name, revision=self.revision)
            await self._sleep(self._backoff.next_delay())

    async def _attempt(self) -> None:
        """One stream, from the newest revision seen until it ends or fails."""
        caught_up = False
        async for item in self._open_stream(self.revision):
            revision: int = item.revision
            if not isinstance(item, self._bookmark_type):
                self._backoff.reset()
                self.revision = max(self.revision, revision)
                try:
                    self._apply(item)
                except Exception:
                    log.exception("watch_item_failed", watch=self.name, revision=revision)
                continue
            gap = not caught_up
            if revision < self.revision:
                # The peer's history is behind our cursor: what lay between is gone.
                log.warning("watch_rewound", watch=self.name, revision=self.revision, peer_revision=revision)
                self.revision = revision
                gap = True
            self.revision = max(self.revision, revision)
            if gap:
                await self._resync_after_gap()
            caught_up = True
            self._backoff.reset()
            if not self.ready.is_set():
                self.ready.set()
                log.info("watch_opened", watch=self.name, revision=self.revision)

    async def _resync_after_gap(self) -> None:
        if self._resync is None:
            return
        try:
            await self._resync()
        except Exception as exc:
            detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            raise ResyncFailed(detail or type(exc).__name__) from exc
        self.resyncs += 1
        log.info("watch_resynced", watch=self.name, revision=self.revision, resyncs=self.resyncs)
