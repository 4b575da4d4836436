"""The collector's work as its connections see it: the `Work` of services.collector.connection.

Ties the session's work events to the job runner and the outbox: an assignment starts a
run, a cancel stops it, an ack frees a batch, a disable stops every run (a disabled
collector does no work). Config updates (the poll interval) are kept for the transports.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from outpost.session.collector import (
    BatchAcked,
    CollectorSession,
    CollectorState,
    ConfigChanged,
    Event,
    JobAssigned,
    JobCancelled,
    StateChanged,
)
from services.collector.jobs.outbox import Outbox
from services.collector.jobs.runner import JobRunner

log = structlog.get_logger(__name__)

DEFAULT_CHECK_MINUTES = 5


@dataclass
class CollectorWork:
    outbox: Outbox
    runner: JobRunner
    collector_check_minutes: int = DEFAULT_CHECK_MINUTES

    @property
    def changed(self) -> asyncio.Event:
        return self.outbox.changed

    def connection_opened(self) -> None:
        self.outbox.connection_changed()

    def fill(self, session: CollectorSession) -> None:
        if session.state is CollectorState.ENABLED:
            for batch in self.outbox.take_unsent_batches():
                session.send_result_batch(batch)
        if session.state in (CollectorState.ENABLED, CollectorState.DISABLED):
            for update in self.outbox.take_updates():
                session.send_job_update(update)

    async def on_event(self, event: Event) -> None:
        if isinstance(event, JobAssigned):
            self.runner.assign(event.assignment)
        elif isinstance(event, JobCancelled):
            log.info("job_run_cancel_received", job_run_id=event.job_run_id, reason=event.reason)
            self.runner.cancel(event.job_run_id, event.reason)
        elif isinstance(event, BatchAcked):
            await self.outbox.ack(event.job_run_id, event.sequence)
        elif isinstance(event, ConfigChanged):
            if event.config.collector_check_minutes:
                self.collector_check_minutes = event.config.collector_check_minutes
        elif isinstance(event, StateChanged) and event.state is not CollectorState.ENABLED and self.runner.running:
            self.runner.cancel_all(f"collector {event.state.value}: {event.reason}".rstrip(": "))
