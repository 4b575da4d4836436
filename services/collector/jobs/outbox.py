"""What the collector still owes the server: result batches until acked, job updates.

Batches stay here from the moment a run produces them until the gateway acknowledges
them (after committing), so a connection that breaks mid-run loses nothing: the next
connection sends every unacknowledged batch again, and the server's dedup by batch
identity makes the resend harmless. Progress updates are coalesced (only the newest per
run matters); a run's final update is sent after all its batches.

This outbox lives in memory: a collector process that dies loses what it held. The
durable spool (next capability) replaces it behind the same calls.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

from outpost.agent.v1 import agent_pb2

MAX_UNACKED_BATCHES = 10_000

BatchKey = tuple[str, int]


@dataclass
class Outbox:
    max_unacked: int = MAX_UNACKED_BATCHES
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _batches: OrderedDict[BatchKey, agent_pb2.ResultBatch] = field(default_factory=OrderedDict)
    _sent: set[BatchKey] = field(default_factory=set)
    _updates: OrderedDict[str, agent_pb2.JobUpdate] = field(default_factory=OrderedDict)
    _room: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def put_batch(self, batch: agent_pb2.ResultBatch) -> None:
        """Hold `batch` until acked; waits while the outbox is full (backpressure on the scan)."""
        async with self._room:
            await self._room.wait_for(lambda: len(self._batches) < self.max_unacked)
        self._batches[(batch.job_run_id, batch.sequence)] = batch
        self.changed.set()

    def put_update(self, update: agent_pb2.JobUpdate) -> None:
        """Queue a job update; a newer progress update of the same run replaces an older one."""
        self._updates[update.job_run_id] = update
        self._updates.move_to_end(update.job_run_id)
        self.changed.set()

    async def ack(self, job_run_id: str, sequence: int) -> None:
        key = (job_run_id, sequence)
        self._batches.pop(key, None)
        self._sent.discard(key)
        async with self._room:
            self._room.notify_all()

    def connection_changed(self) -> None:
        """A new connection: everything unacked must be sent again."""
        self._sent.clear()
        if self._batches or self._updates:
            self.changed.set()

    def take_unsent_batches(self) -> list[agent_pb2.ResultBatch]:
        out = [b for k, b in self._batches.items() if k not in self._sent]
        self._sent.update((b.job_run_id, b.sequence) for b in out)
        return out

    def take_updates(self) -> list[agent_pb2.JobUpdate]:
        """Updates whose run has no unsent batch left (a final update follows its batches)."""
        unsent_runs = {k[0] for k in self._batches if k not in self._sent}
        ready = [u for run, u in self._updates.items() if run not in unsent_runs]
        for update in ready:
            del self._updates[update.job_run_id]
        return ready

    def restore_updates(self, updates: list[agent_pb2.JobUpdate]) -> None:
        """Put back updates a connection could not send (keeps a newer one if queued since)."""
        for update in updates:
            self._updates.setdefault(update.job_run_id, update)

    @property
    def unacked(self) -> int:
        return len(self._batches)
