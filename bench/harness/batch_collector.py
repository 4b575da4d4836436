"""An in-process collector that takes runs and streams result batches with a send window.

`IdleCollector` drives the real `CollectorSession` over the real collector transport;
this subclass adds what a scanning collector does on the wire, without scanning:

- a `JobAssignment` is recorded and answered with RUNNING (its `attempt` carried along);
  every heartbeat lists the runs still open (`Heartbeat.running_job_run_ids`), so the
  gateway can renew their leases; `finish()` sends SUCCEEDED;
- `send(batches)` streams prepared `ResultBatch`es: at most `window` unacknowledged at a
  time (the collector's SEND_WINDOW, ADR 0010), the next one sent as soon as an ack
  frees a slot, so the gateway sets the pace; a `Throttle` holds sending for its
  `retry_after`, then everything unacknowledged is sent again, as the real spool does;
- each phase records when its first batch went out and its last ack came in (the loop's
  monotonic clock), acks for batches it was not waiting for, and throttles.

Like the real `services.collector.connection.Connection`, the loop waits for the next
frame *or* for new work, keeping one pending `recv()` across turns (so no frame is lost
when new work wakes it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.idle_collector import IdleCollector
from outpost.agent.v1 import agent_pb2
from outpost.session.codec import decode_server_message
from outpost.session.collector import BatchAcked, Closed, CollectorState, JobAssigned, Throttled
from outpost.session.errors import RemoteProtocolError
from services.collector.transport import TransportError

BatchKey = tuple[str, int]
SEND_WINDOW = 16


@dataclass
class PhaseStats:
    """One `send()`: how many batches, when the first went out, when the last ack came back."""

    batches: int = 0
    acked: int = 0
    first_send_at: float | None = None
    last_ack_at: float | None = None
    unexpected_acks: int = 0
    throttles: int = 0
    throttle_seconds: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)


class BatchCollector(IdleCollector):
    def __init__(self, *args: Any, window: int = SEND_WINDOW, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = window
        self.assignments: dict[str, agent_pb2.JobAssignment] = {}
        self.repeated_assignments = 0
        self.assigned = asyncio.Event()
        self.open_runs: set[str] = set()
        self.phase = PhaseStats()
        self._pending: deque[agent_pb2.ResultBatch] = deque()
        self._in_flight: dict[BatchKey, agent_pb2.ResultBatch] = {}
        self._paused_until = 0.0
        self._wake = asyncio.Event()
        self._recv: asyncio.Future[bytes | None] | None = None

    # --- what the bench calls -----------------------------------------------------------------
    async def wait_for_assignment(self, known: set[str], timeout: float) -> agent_pb2.JobAssignment:
        """The first assignment whose run is not in `known`."""
        async with asyncio.timeout(timeout):
            while True:
                fresh = [a for run_id, a in self.assignments.items() if run_id not in known]
                if fresh:
                    return fresh[0]
                if self.state is CollectorState.CLOSED:
                    raise RuntimeError(f"{self.identity.name}: session closed: {self.describe_close()}")
                self.assigned.clear()
                await self.assigned.wait()

    def send(self, batches: Iterable[agent_pb2.ResultBatch]) -> PhaseStats:
        """Start streaming `batches`; returns the phase's stats (see `wait_acked`)."""
        self.phase = PhaseStats()
        self._pending.extend(batches)
        self.phase.batches = len(self._pending)
        if not self.phase.batches:
            self.phase.done.set()
        self._wake.set()
        return self.phase

    async def wait_acked(self, timeout: float) -> PhaseStats:
        """Until every batch of the phase is acknowledged; RuntimeError if the session ends first."""
        phase = self.phase
        try:
            async with asyncio.timeout(timeout):
                await phase.done.wait()
        except TimeoutError:
            raise RuntimeError(
                f"{self.identity.name}: {phase.acked}/{phase.batches} batches acked after {timeout:g}s"
            ) from None
        if phase.acked < phase.batches:
            raise RuntimeError(f"{self.identity.name}: session closed mid-phase: {self.describe_close()}")
        return phase

    def finish(self, job_run_id: str, state: int = agent_pb2.JOB_STATE_SUCCEEDED) -> None:
        """Report the run's end (sent at the next turn of the loop)."""
        assert self.session is not None
        attempt = self.assignments[job_run_id].attempt if job_run_id in self.assignments else 0
        self.session.send_job_update(agent_pb2.JobUpdate(job_run_id=job_run_id, state=state, attempt=attempt))  # type: ignore[arg-type]
        self.open_runs.discard(job_run_id)
        self._wake.set()

    async def close(self) -> None:
        await super().close()
        if self._recv is not None:
            self._recv.cancel()

    # --- the loop ---------------------------------------------------------------------------------
    def _heartbeat(self) -> agent_pb2.Heartbeat:
        return agent_pb2.Heartbeat(running_job_run_ids=sorted(self.open_runs))

    def _fill(self) -> None:
        session = self.session
        assert session is not None
        now = self._loop.time()
        if now < self._paused_until:
            return
        while self._pending and len(self._in_flight) < self.window:
            batch = self._pending[0]
            if not session.send_result_batch(batch):
                return
            self._pending.popleft()
            self._in_flight[(batch.job_run_id, batch.sequence)] = batch
            if self.phase.first_send_at is None:
                self.phase.first_send_at = now

    async def _receive_until(self, deadline: float | None) -> None:
        session, transport = self.session, self.transport
        assert session is not None and transport is not None
        self._wake.clear()
        self._fill()
        await self._flush()
        self._note_state()
        if session.closed:
            return
        if self._recv is None:
            self._recv = asyncio.ensure_future(transport.recv())
        wake: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
        waiters: set[asyncio.Future[Any]] = {self._recv, wake}
        timeout = None if deadline is None else max(0.0, deadline - self._loop.time())
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
        if self._recv not in done:
            if not done:
                now = self._loop.time()
                session.tick(now, self._heartbeat() if session.heartbeat_due(now) else None)
            return
        received, self._recv = self._recv, None
        try:
            data = received.result()
        except RemoteProtocolError as exc:
            session.fail(exc.reason, exc.message)
            return
        except TransportError as exc:
            self.error = str(exc)
            session.connection_lost()
            return
        if data is None:
            session.connection_lost()
            return
        try:
            message = decode_server_message(data)
        except RemoteProtocolError as exc:
            session.fail(exc.reason, exc.message)
            return
        session.receive(message, self._loop.time())

    def _note_state(self) -> None:
        session = self.session
        assert session is not None
        for event in session.events_received():
            if isinstance(event, Closed):
                self.closed = event
                self.phase.done.set()
            elif isinstance(event, JobAssigned):
                self._take(event.assignment)
            elif isinstance(event, BatchAcked):
                self._acked((event.job_run_id, event.sequence))
            elif isinstance(event, Throttled):
                self._throttled(event.retry_after)
        if session.state is CollectorState.ENABLED and self.live_at is None:
            self.live_at = self._loop.time()
        if session.server_instance:
            self.identity.bound_server_instance = session.server_instance
        self._changed.set()

    def _take(self, assignment: agent_pb2.JobAssignment) -> None:
        run_id = assignment.job_run_id
        if run_id in self.assignments:
            self.repeated_assignments += 1  # handed out again (lease expired): keep the first
        else:
            self.assignments[run_id] = assignment
        self.open_runs.add(run_id)
        assert self.session is not None
        self.session.send_job_update(
            agent_pb2.JobUpdate(job_run_id=run_id, state=agent_pb2.JOB_STATE_RUNNING, attempt=assignment.attempt)
        )
        self.assigned.set()

    def _acked(self, key: BatchKey) -> None:
        phase = self.phase
        if self._in_flight.pop(key, None) is None:
            # Not in flight: sent before a throttle and put back, or not ours at all.
            for batch in self._pending:
                if (batch.job_run_id, batch.sequence) == key:
                    self._pending.remove(batch)
                    break
            else:
                phase.unexpected_acks += 1
                return
        phase.acked += 1
        phase.last_ack_at = self._loop.time()
        if phase.acked >= phase.batches:
            phase.done.set()
        self._wake.set()

    def _throttled(self, retry_after: float) -> None:
        self.phase.throttles += 1
        self.phase.throttle_seconds += retry_after
        self._paused_until = self._loop.time() + retry_after
        # Everything unacknowledged goes again after the pause, oldest first.
        self._pending.extendleft(reversed(list(self._in_flight.values())))
        self._in_flight.clear()
        with contextlib.suppress(RuntimeError):
            self._loop.call_at(self._paused_until, self._wake.set)
