"""Tell the registry which collectors this gateway holds and how each was last heard.

Disconnects are reported as they happen (batched every half second). Every half heartbeat
interval a complete list of live sessions follows, each with when the collector was last
heard (any frame), its clock skew and its spool: the registry calls a collector online
only while that report is fresh (`now - last_heard_at <= 2 x heartbeat interval`, ADR
0010), so a cut link shows as offline within two intervals, and collectors that vanished
from this gateway are marked disconnected. A polling session also carries the wait
between polls its collector was told (`check_in_seconds`), which the registry adds to
that window: a polling collector is silent between check-ins by design. Reports that fail are retried with the next
flush; the queue is bounded, and the next complete report repairs anything dropped.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from outpost import errors
from services.gateway.peers.registry_client import RegistryClient, SessionReport
from services.gateway.sessions.hub import LiveSession, SessionHub

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 0.5
MAX_PENDING_REPORTS = 10_000
COMPLETE_REPORTS_PER_HEARTBEAT = 2


def live_report(s: LiveSession) -> SessionReport:
    return SessionReport(
        instance_uid=s.instance_uid,
        session_id=s.session_id,
        connected=True,
        remote_address=s.remote_address,
        transport=s.transport,
        last_heard_at=s.last_message_at,
        clock_skew_ms=s.clock_skew_ms,
        spool=s.spool,
        check_in_seconds=s.check_in_seconds,
    )


def live_reports(hub: SessionHub) -> list[SessionReport]:
    """Every live session of this gateway, as the complete report lists it."""
    return [live_report(s) for s in hub.sessions()]


class SessionReporter:
    def __init__(self, registry: RegistryClient, gateway_id: str, hub: SessionHub, heartbeat_interval: float) -> None:
        self._registry = registry
        self._gateway_id = gateway_id
        self._hub = hub
        self.interval = heartbeat_interval / COMPLETE_REPORTS_PER_HEARTBEAT
        self._pending: list[SessionReport] = []
        self._wakeup = asyncio.Event()

    def connected(self, session: LiveSession) -> None:
        """A session this gateway accepted from its collector cache, without a registry call
        (ADR 0034): the registry learns where the collector is with the next flush, in one
        batched call for every such session, not one call per handshake."""
        if len(self._pending) < MAX_PENDING_REPORTS:
            self._pending.append(live_report(session))
            self._wakeup.set()

    def disconnected(self, instance_uid: str, session_id: str, last_error: str) -> None:
        if len(self._pending) < MAX_PENDING_REPORTS:
            self._pending.append(SessionReport(instance_uid, session_id, connected=False, last_error=last_error))
            self._wakeup.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_complete = loop.time() + self.interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(FLUSH_SECONDS, max(0.0, next_complete - loop.time()))):
                    await self._wakeup.wait()
            self._wakeup.clear()
            await self.flush()
            if loop.time() >= next_complete:
                next_complete = loop.time() + self.interval
                await self._send(live_reports(self._hub), complete=True)

    async def flush(self) -> None:
        """Send the disconnects not yet reported (the drain calls this once more at the end)."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        if not await self._send(batch, complete=False):
            self._pending = batch[: MAX_PENDING_REPORTS - len(self._pending)] + self._pending

    async def _send(self, reports: list[SessionReport], *, complete: bool) -> bool:
        try:
            await self._registry.report_sessions(self._gateway_id, reports, complete=complete)
        except errors.OutpostError as exc:
            log.warning("session_report_failed", code=exc.status, details=exc.details, reports=len(reports))
            return False
        return True
