"""Run assigned discoveries: scan, batch what is found, report progress, obey cancels.

One task per job run. The engine yields a device as soon as its probes finish; devices
are grouped into batches so results stream to the server while the scan runs: a batch
goes when it holds `batch_max_devices`, or when `BATCH_LINGER_SECONDS` have passed since
its first device arrived. The linger is a timer, not a check made when the next device
comes: a host found before a stretch of silent addresses is sent within the linger time,
not when (or if) another host answers. Progress updates are rate-limited; the final
update carries the number of batches. Cancelling a run (admin cancel, collector
disabled, deadline) stops its probes at once.

Batches and updates carry the assignment's attempt: a run handed out again after its
lease expired is a new attempt, numbers its batches from 1 again, and must not collide
with the first attempt's identities. An assignment repeated after a reconnect (same or
older attempt) is ignored; a newer attempt of a run still going here replaces it: the
old attempt is cancelled and the new one starts once it has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from outpost.agent.v1 import agent_pb2
from services.collector.store.spool import Spool

log = structlog.get_logger(__name__)

BATCH_LINGER_SECONDS = 0.5
PROGRESS_INTERVAL_SECONDS = 0.5

Discover = Callable[
    [agent_pb2.JobAssignment, Callable[[int, int, int], None]], AsyncIterator[agent_pb2.DeviceObservation]
]
"""(assignment, on_progress(targets_done, targets_total, devices_found)) -> devices, as protobuf."""


@dataclass
class _Run:
    assignment: agent_pb2.JobAssignment
    task: asyncio.Task[None] | None = None
    cancel_reason: str = ""
    batches: int = 0
    targets_done: int = 0
    targets_total: int = 0
    devices_found: int = 0
    last_progress: float = 0.0


@dataclass
class JobRunner:
    spool: Spool
    discover: Discover
    wall_clock: Callable[[], float] = time.time
    """The collector's wall clock (services/collector/clock.py), for the batch's observed time."""
    linger_seconds: float = BATCH_LINGER_SECONDS
    _runs: dict[str, _Run] = field(default_factory=dict)

    def assign(self, assignment: agent_pb2.JobAssignment) -> None:
        previous = self._runs.get(assignment.job_run_id)
        if previous is not None:
            if assignment.attempt <= previous.assignment.attempt:
                return  # a repeated assignment (after a reconnect): the run is already going
            log.warning(
                "job_run_superseded",
                job_run_id=assignment.job_run_id,
                attempt=previous.assignment.attempt,
                new_attempt=assignment.attempt,
            )
            self.cancel(assignment.job_run_id, f"superseded by attempt {assignment.attempt}")
        run = _Run(assignment)
        self._runs[assignment.job_run_id] = run
        before = previous.task if previous is not None else None
        run.task = asyncio.create_task(self._run(run, after=before), name=f"job-{assignment.job_run_id}")
        log.info(
            "job_run_started",
            job_run_id=assignment.job_run_id,
            discovery=assignment.discovery,
            attempt=assignment.attempt,
        )

    def cancel(self, job_run_id: str, reason: str, attempt: int = 0) -> None:
        """Stop a run; a cancel naming an older attempt than the one running is ignored."""
        run = self._runs.get(job_run_id)
        if attempt and run is not None and run.assignment.attempt and attempt != run.assignment.attempt:
            log.info("job_run_cancel_ignored", job_run_id=job_run_id, attempt=attempt, running=run.assignment.attempt)
            return
        if run is not None and run.task is not None and not run.task.done():
            run.cancel_reason = reason or "cancelled"
            run.task.cancel()

    def cancel_all(self, reason: str) -> None:
        for job_run_id in list(self._runs):
            self.cancel(job_run_id, reason)

    @property
    def running(self) -> list[str]:
        return [k for k, r in self._runs.items() if r.task is not None and not r.task.done()]

    async def stop(self) -> None:
        self.cancel_all("collector shutting down")
        tasks = [r.task for r in self._runs.values() if r.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, run: _Run, after: asyncio.Task[None] | None = None) -> None:
        assignment = run.assignment
        structlog.contextvars.bind_contextvars(job_run_id=assignment.job_run_id, attempt=assignment.attempt)
        state, error = agent_pb2.JOB_STATE_SUCCEEDED, ""
        deadline = assignment.deadline_seconds or None
        try:
            if after is not None:
                # The attempt this one replaces reports its end first, so the newest
                # update the spool keeps for the run is this attempt's.
                await asyncio.wait([after])
            self._update(run, agent_pb2.JOB_STATE_RUNNING)
            async with asyncio.timeout(deadline):
                await self._scan(run)
        except asyncio.CancelledError:
            state, error = agent_pb2.JOB_STATE_CANCELLED, run.cancel_reason or "cancelled"
        except TimeoutError:
            state, error = agent_pb2.JOB_STATE_TIMED_OUT, f"run exceeded its deadline of {deadline}s"
        except Exception as exc:
            log.exception("job_run_crashed")
            state, error = agent_pb2.JOB_STATE_FAILED, f"{type(exc).__name__}: {exc}"
        self._update(run, state, error=error)
        if self._runs.get(assignment.job_run_id) is run:
            del self._runs[assignment.job_run_id]
        log.info(
            "job_run_ended",
            state=agent_pb2.JobState.Name(state),
            error=error,
            devices_found=run.devices_found,
            batches=run.batches,
        )

    async def _scan(self, run: _Run) -> None:
        """Batch the engine's devices: full, or `linger_seconds` after the batch's first device."""
        limit = run.assignment.batch_max_devices or 64
        pending: list[agent_pb2.DeviceObservation] = []
        linger_until = 0.0

        def on_progress(done: int, total: int, found: int) -> None:
            new_total = total != run.targets_total
            run.targets_done, run.targets_total, run.devices_found = done, total, found
            # A new total (the targets were just expanded) goes out at once, so a run
            # shows "0/65536", not "0/0", while its first hosts are still being probed.
            if new_total or time.monotonic() - run.last_progress >= PROGRESS_INTERVAL_SECONDS:
                self._update(run, agent_pb2.JOB_STATE_RUNNING)

        devices = self.discover(run.assignment, on_progress)
        # The next device is awaited in a task of its own, so the linger can run out while the
        # engine is still probing silent addresses: waiting on it with a timeout leaves it running.
        next_device: asyncio.Future[agent_pb2.DeviceObservation] | None = None
        try:
            while True:
                if next_device is None:
                    next_device = asyncio.ensure_future(anext(devices))
                timeout = max(0.0, linger_until - time.monotonic()) if pending else None
                done, _ = await asyncio.wait({next_device}, timeout=timeout)
                if not done:
                    await self._emit(run, pending)  # the linger ran out: send what is here
                    pending = []
                    continue
                arrived, next_device = next_device, None
                try:
                    device = arrived.result()
                except StopAsyncIteration:
                    break
                if not pending:
                    linger_until = time.monotonic() + self.linger_seconds
                pending.append(device)
                if len(pending) >= limit:
                    await self._emit(run, pending)
                    pending = []
        finally:
            if next_device is not None:
                # A cancel or deadline: stop the engine where it is and let its probes close.
                next_device.cancel()
                await asyncio.shield(asyncio.wait({next_device}))
                if not next_device.cancelled() and next_device.exception() is None:
                    pending.append(next_device.result())  # it arrived just as the run was stopped
            with contextlib.suppress(Exception):
                await asyncio.shield(_close(devices))
            if pending:
                # Results found before a cancel or deadline are still results.
                await asyncio.shield(self._emit(run, pending))

    async def _emit(self, run: _Run, devices: list[agent_pb2.DeviceObservation]) -> None:
        run.batches += 1
        batch = agent_pb2.ResultBatch(
            job_run_id=run.assignment.job_run_id,
            sequence=run.batches,
            attempt=run.assignment.attempt,
            devices=devices,
            observed_at_unix_ms=int(self.wall_clock() * 1000),
        )
        await self.spool.put_batch(batch)

    def _update(self, run: _Run, state: Any, error: str = "") -> None:
        run.last_progress = time.monotonic()
        self.spool.put_update(
            agent_pb2.JobUpdate(
                job_run_id=run.assignment.job_run_id,
                attempt=run.assignment.attempt,
                state=state,
                targets_done=run.targets_done,
                targets_total=run.targets_total,
                devices_found=run.devices_found,
                error=error,
                batches_sent=run.batches,
            )
        )


async def _close(devices: AsyncIterator[agent_pb2.DeviceObservation]) -> None:
    """Close the engine's generator (its `finally` stops the scan and closes every socket)."""
    close = getattr(devices, "aclose", None)
    if close is not None:
        await close()
