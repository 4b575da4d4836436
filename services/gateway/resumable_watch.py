"""Keep a server-streaming watch open and resume it from the newest revision seen.

List-then-watch, as Kubernetes does: the first bookmark says where the peer's history
stands; every later (re)connection resumes from the newest revision seen, so a change
made while the watch was broken is replayed, never missed. The gateway serves collectors
only after both of its watches (registry collectors, scheduler dispatch) are `ready`,
so no decision can fall between a handshake and the watch.

Between attempts it waits a capped full-jitter backoff (`outpost.backoff`), reset by
any item received, so the loop survives a peer that stays down for days. Any error of
one attempt is logged and retried: the watch is what keeps this gateway's decisions
current, and a dead watch task would leave health saying SERVING on stale state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog

from outpost.backoff import Backoff

log = structlog.get_logger(__name__)

BACKOFF_INITIAL_SECONDS = 0.4
"""The window after the first failure; it doubles with each further one."""
BACKOFF_MAX_SECONDS = 5.0


class ResumableWatch:
    """Run `open_stream(since)` forever; hand every non-bookmark item to `apply`."""

    def __init__(
        self,
        name: str,
        open_stream: Callable[[int], AsyncIterator[Any]],
        apply: Callable[[Any], None],
        bookmark_type: type,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self._open_stream = open_stream
        self._apply = apply
        self._bookmark_type = bookmark_type
        self._backoff = backoff or Backoff(BACKOFF_INITIAL_SECONDS, BACKOFF_MAX_SECONDS)
        self._sleep = sleep
        self.revision = 0
        self.ready = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                async for item in self._open_stream(self.revision):
                    self._backoff.reset()
                    self.revision = max(self.revision, item.revision)
                    if isinstance(item, self._bookmark_type):
                        if not self.ready.is_set():
                            self.ready.set()
                            log.info("watch_opened", watch=self.name, revision=self.revision)
                        continue
                    try:
                        self._apply(item)
                    except Exception:
                        log.exception("watch_item_failed", watch=self.name, revision=item.revision)
                log.warning("watch_ended", watch=self.name, revision=self.revision)
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "watch_failed", watch=self.name, code=exc.code().name, details=exc.details(), revision=self.revision
                )
            except Exception:
                log.exception("watch_crashed", watch=self.name, revision=self.revision)
            await self._sleep(self._backoff.next_delay())
