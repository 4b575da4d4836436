"""Keep a server-streaming watch open and resume it from the newest revision seen.

List-then-watch, as Kubernetes does: the first bookmark says where the peer's history
stands; every later (re)connection resumes from the newest revision seen, so a change
made while the watch was broken is replayed, never missed. The gateway serves collectors
only after both of its watches (registry collectors, scheduler dispatch) are `ready`,
so no decision can fall between a handshake and the watch.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import structlog

log = structlog.get_logger(__name__)

BACKOFF_INITIAL_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 5.0


class ResumableWatch:
    """Run `open_stream(since)` forever; hand every non-bookmark item to `apply`."""

    def __init__(
        self,
        name: str,
        open_stream: Callable[[int], AsyncIterator[Any]],
        apply: Callable[[Any], None],
        bookmark_type: type,
    ) -> None:
        self.name = name
        self._open_stream = open_stream
        self._apply = apply
        self._bookmark_type = bookmark_type
        self.revision = 0
        self.ready = asyncio.Event()

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                async for item in self._open_stream(self.revision):
                    attempt = 0
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
            attempt += 1
            delay = random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2**attempt))  # noqa: S311
            await asyncio.sleep(delay)
