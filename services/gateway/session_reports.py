"""Tell the registry which collectors this gateway holds, in batches.

Disconnects are reported as they happen (batched every half second); every heartbeat
interval a complete list of live sessions refreshes last-seen and lets the registry mark
collectors that vanished from this gateway as disconnected. Reports that fail are
retried with the next flush; the queue is bounded, and the periodic complete report
repairs anything dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import structlog

from services.gateway.registry_client import RegistryClient, SessionReport

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 0.5
MAX_PENDING_REPORTS = 10_000


class SessionReporter:
    def __init__(
        self,
        registry: RegistryClient,
        gateway_id: str,
        live_sessions: Callable[[], list[SessionReport]],
        interval: float,
    ) -> None:
        self._registry = registry
        self._gateway_id = gateway_id
        self._live_sessions = live_sessions
        self._interval = interval
        self._pending: list[SessionReport] = []
        self._wakeup = asyncio.Event()

    def disconnected(self, instance_uid: str, session_id: str, last_error: str) -> None:
        if len(self._pending) < MAX_PENDING_REPORTS:
            self._pending.append(SessionReport(instance_uid, session_id, connected=False, last_error=last_error))
            self._wakeup.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_complete = loop.time() + self._interval
        while True:
            try:
                async with asyncio.timeout(FLUSH_SECONDS):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
            self._wakeup.clear()
            await self._flush_pending()
            if loop.time() >= next_complete:
                next_complete = loop.time() + self._interval
                await self._send(self._live_sessions(), complete=True)

    async def _flush_pending(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        if not await self._send(batch, complete=False):
            self._pending = batch[: MAX_PENDING_REPORTS - len(self._pending)] + self._pending

    async def _send(self, reports: list[SessionReport], *, complete: bool) -> bool:
        try:
            await self._registry.report_sessions(self._gateway_id, reports, complete=complete)
        except grpc.aio.AioRpcError as exc:
            log.warning("session_report_failed", code=exc.code().name, details=exc.details(), reports=len(reports))
            return False
        return True
