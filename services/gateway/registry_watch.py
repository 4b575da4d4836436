"""Keep the registry watch open and feed its changes into the session hub.

List-then-watch: the first bookmark says where the registry's history stands; every later
(re)connection resumes from the newest revision seen, so a change made while the watch
was broken is replayed, never missed. The gateway starts serving collectors only after
the first bookmark (`ready`), so no handshake can fall between decision and watch.
"""

from __future__ import annotations

import asyncio
import random

import grpc
import structlog

from services.gateway.domain.session_hub import SessionHub
from services.gateway.registry_client import Bookmark, RegistryClient

log = structlog.get_logger(__name__)

BACKOFF_INITIAL_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 5.0


class RegistryWatch:
    def __init__(self, registry: RegistryClient, hub: SessionHub) -> None:
        self._registry = registry
        self._hub = hub
        self.revision = 0
        self.ready = asyncio.Event()

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                async for item in self._registry.watch(self.revision):
                    attempt = 0
                    if isinstance(item, Bookmark):
                        self.revision = max(self.revision, item.revision)
                        if not self.ready.is_set():
                            self.ready.set()
                            log.info("registry_watch_opened", revision=self.revision)
                        continue
                    self.revision = max(self.revision, item.revision)
                    self._hub.apply(item)
                log.warning("registry_watch_ended", revision=self.revision)
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "registry_watch_failed", code=exc.code().name, details=exc.details(), revision=self.revision
                )
            attempt += 1
            await asyncio.sleep(random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2**attempt)))  # noqa: S311
