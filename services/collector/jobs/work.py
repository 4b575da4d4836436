"""The collector's work as its connections see it: the `Work` of services.collector.connection.

Ties the session's work events to the job runner and the spool: an assignment starts a
run, a cancel stops it, an ack frees a batch, a throttle holds results back for the time
the server asks, a disable stops every run (a disabled collector does no work). Config
updates (the poll interval) are kept for the transports.

Heartbeats carry the spool's status and the runs this collector holds: the ones running,
and the ones whose final update the server may not have read yet (their results may sit
behind a throttle; the lease must not expire meanwhile). The Hello carries the spool's
status too.

Job updates have no acknowledgement of their own, but heartbeats do, and a stream is
ordered and the server handles its frames one at a time: once the server acknowledges
a heartbeat sent after an update, it has read that update. So per connection, the
updates handed to the session before the n-th heartbeat are confirmed to the spool when
the n-th HeartbeatAck arrives; a connection that ends first leaves them unconfirmed, and
the next connection sends them again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import structlog

from outpost.agent.v1 import agent_pb2
from outpost.session.collector import (
    BatchAcked,
    CollectorSession,
    CollectorState,
    ConfigChanged,
    Event,
    JobAssigned,
    JobCancelled,
    StateChanged,
    Throttled,
)
from services.collector.jobs.runner import JobRunner
from services.collector.store.spool import Spool

log = structlog.get_logger(__name__)

DEFAULT_CHECK_MINUTES = 5
WAKE_MARGIN = 0.05  # the loop may run a timer a little early; wake once the pause is surely over


@dataclass
class CollectorWork:
    spool: Spool
    runner: JobRunner
    collector_check_minutes: int = DEFAULT_CHECK_MINUTES
    _handed: list[agent_pb2.JobUpdate] = field(default_factory=list)  # since the last heartbeat
    _awaiting_ack: deque[tuple[int, list[agent_pb2.JobUpdate]]] = field(default_factory=deque)
    _heartbeats_sent: int = 0
    _heartbeats_acked: int = 0

    @property
    def changed(self) -> asyncio.Event:
        return self.spool.changed

    def connection_opened(self) -> None:
        self.spool.connection_changed()
        self._handed = []
        self._awaiting_ack.clear()
        self._heartbeats_sent = self._heartbeats_acked = 0

    def fill(self, session: CollectorSession) -> None:
        if session.state is CollectorState.ENABLED:
            for batch in self.spool.take_unsent_batches():
                session.send_result_batch(batch)
        if session.state in (CollectorState.ENABLED, CollectorState.DISABLED):
            updates = self.spool.take_updates()
            for update in updates:
                session.send_job_update(update)
            self._handed.extend(updates)

    def heartbeat(self) -> agent_pb2.Heartbeat:
        """What the next heartbeat carries; the connection calls this as the session sends one."""
        self._heartbeats_sent += 1
        if self._handed:
            self._awaiting_ack.append((self._heartbeats_sent, self._handed))
            self._handed = []
        held = dict.fromkeys([*self.runner.running, *self.spool.runs_owing_an_end()])
        return agent_pb2.Heartbeat(spool=self.spool.status(), running_job_run_ids=list(held))

    def heartbeat_acked(self) -> None:
        """The server acknowledged the oldest unacknowledged heartbeat of this connection."""
        self._heartbeats_acked += 1
        while self._awaiting_ack and self._awaiting_ack[0][0] <= self._heartbeats_acked:
            _, updates = self._awaiting_ack.popleft()
            self.spool.confirm_updates(updates)

    def spool_status(self) -> agent_pb2.SpoolStatus:
        return self.spool.status()

    async def on_event(self, event: Event) -> None:
        if isinstance(event, JobAssigned):
            self.runner.assign(event.assignment)
        elif isinstance(event, JobCancelled):
            log.info("job_run_cancel_received", job_run_id=event.job_run_id, attempt=event.attempt, reason=event.reason)
            self.runner.cancel(event.job_run_id, event.reason, event.attempt)
        elif isinstance(event, BatchAcked):
            self.spool.ack(event.job_run_id, event.attempt, event.sequence)
        elif isinstance(event, Throttled):
            self._throttle(event)
        elif isinstance(event, ConfigChanged):
            # Once per session and per change: the server's settings as this collector follows them.
            log.info(
                "config_received",
                collector_check_minutes=event.config.collector_check_minutes,
                heartbeat_interval_seconds=event.config.heartbeat_interval_seconds,
            )
            if event.config.collector_check_minutes:
                self.collector_check_minutes = event.config.collector_check_minutes
        elif isinstance(event, StateChanged) and event.state is not CollectorState.ENABLED and self.runner.running:
            self.runner.cancel_all(f"collector {event.state.value}: {event.reason}".rstrip(": "))

    def _throttle(self, event: Throttled) -> None:
        """Hold batches back for `retry_after`; then the spool sends what was in flight again."""
        if self.spool.throttle(time.monotonic() + event.retry_after):
            log.warning(
                "results_throttled",
                retry_after=event.retry_after,
                reason=event.reason,
                unacked=self.spool.unacked,
            )
        # Wake the connection when the pause is over (it may have nothing else to wait for).
        asyncio.get_running_loop().call_later(event.retry_after + WAKE_MARGIN, self.spool.changed.set)
