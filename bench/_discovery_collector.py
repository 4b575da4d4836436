"""A lightweight collector that takes job assignments: an `IdleCollector` that notes when each arrives.

`bench/harness/idle_collector.py` drives the real `CollectorSession` over the real collector
transports; this subclass adds only what the dispatch bench needs:

- each `JobAssigned` event is stamped with the instant its frame was read off the
  transport (`loop.time()` for intervals, `time.time()` for comparing with the
  scheduler's timestamps; both processes share this machine's clock);
- the run is answered at once with RUNNING and then SUCCEEDED (no scan: what is measured
  is the way to the collector, not the scan), so the scheduler sees every run end and
  the next round starts from an idle system. The replies are flushed before the session
  waits for its next frame, not at its next heartbeat.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from harness.idle_collector import IdleCollector

from outpost.agent.v1 import agent_pb2
from outpost.session.collector import Closed, CollectorState, JobAssigned


@dataclass(frozen=True)
class Arrival:
    """A job assignment as it reached the collector."""

    job_run_id: str
    discovery: str
    monotonic: float
    wall: float


class DispatchCollector(IdleCollector):
    """One live collector session that records, and promptly finishes, every run assigned to it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.arrivals: dict[str, Arrival] = {}
        self.arrived = asyncio.Event()
        self._read_at = (0.0, 0.0)

    async def _receive_until(self, deadline: float | None) -> None:
        await self._flush()  # the replies queued by _note_state, now rather than at the next frame
        await super()._receive_until(deadline)
        self._read_at = (self._loop.time(), time.time())

    def _note_state(self) -> None:
        session = self.session
        assert session is not None
        for event in session.events_received():
            if isinstance(event, Closed):
                self.closed = event
            elif isinstance(event, JobAssigned):
                self._take(event.assignment)
        if session.state is CollectorState.ENABLED and self.live_at is None:
            self.live_at = self._loop.time()
        if session.server_instance:
            self.identity.bound_server_instance = session.server_instance
        self._changed.set()

    def _take(self, assignment: agent_pb2.JobAssignment) -> None:
        run_id = assignment.job_run_id
        if run_id not in self.arrivals:  # a repeated assignment keeps its first arrival
            self.arrivals[run_id] = Arrival(run_id, assignment.discovery, *self._read_at)
        self.arrived.set()
        assert self.session is not None
        for state in (agent_pb2.JOB_STATE_RUNNING, agent_pb2.JOB_STATE_SUCCEEDED):
            self.session.send_job_update(agent_pb2.JobUpdate(job_run_id=run_id, state=state))

    async def wait_for_run(self, run_id: str, timeout: float) -> Arrival:
        """The arrival of `run_id`, waiting for it; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while run_id not in self.arrivals:
                self.arrived.clear()
                await self.arrived.wait()
        return self.arrivals[run_id]
