"""Job updates the collector owes the server: the newest per run, until the server has read it.

An update is *pending* until handed to a session, then *unconfirmed* until `confirm()`
says the server read it (see `work.py`: a later heartbeat was acknowledged). A new
connection makes the unconfirmed pending again: a repeated update is harmless (the
scheduler ignores a repeated final update), a lost final one would leave the run to its
lease. Each update is written to the spool file with a version, so confirming an older
update of a run never deletes a newer one. After a restart only final updates are kept:
the process that was running the run is gone, and its lease decides what happens to it.

The batches decide when a final update may go (`take(has_unsent)`): only once all of its
run's batches were sent, so the server hears of the end after the results.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from outpost.agent.v1 import agent_pb2
from services.collector.store.spool_file import SpoolFile, UpdateRow

JS = agent_pb2.JobState
FINAL_STATES = frozenset({JS.JOB_STATE_SUCCEEDED, JS.JOB_STATE_FAILED, JS.JOB_STATE_TIMED_OUT, JS.JOB_STATE_CANCELLED})

Write = Callable[..., None]
"""Queue a write on the spool file: write(fn, *args); its failure is logged by the spool."""


@dataclass(frozen=True)
class _Update:
    version: int
    update: agent_pb2.JobUpdate

    @property
    def final(self) -> bool:
        return self.update.state in FINAL_STATES


class SpoolUpdates:
    def __init__(self, file: SpoolFile, write: Write) -> None:
        self._file = file
        self._write = write
        self._pending: OrderedDict[str, _Update] = OrderedDict()
        self._unconfirmed: dict[str, _Update] = {}
        self._version = 0

    def load(self) -> None:
        """At open: keep the stored final updates (pending), delete every other one."""
        stale = []
        for stored in self._file.read_updates():
            self._version = max(self._version, stored.version)
            update = _parse(stored)
            if update is None or update.state not in FINAL_STATES:
                stale.append((stored.job_run_id, stored.version))
            else:
                self._pending[stored.job_run_id] = _Update(stored.version, update)
        if stale:
            self._file.delete_updates(stale)

    def put(self, update: agent_pb2.JobUpdate) -> None:
        self._version += 1
        held = _Update(self._version, update)
        self._pending[update.job_run_id] = held
        self._pending.move_to_end(update.job_run_id)
        payload = update.SerializeToString()
        self._write(
            self._file.put_update, UpdateRow(update.job_run_id, held.version, held.final, zlib.crc32(payload), payload)
        )

    def take(self, has_unsent: Callable[[str], bool]) -> list[agent_pb2.JobUpdate]:
        """Pending updates ready to send; a final one waits while its run `has_unsent` batches."""
        ready: list[agent_pb2.JobUpdate] = []
        for run, held in list(self._pending.items()):
            if held.final and has_unsent(run):
                continue
            del self._pending[run]
            self._unconfirmed[run] = held
            ready.append(held.update)
        return ready

    def confirm(self, updates: Iterable[agent_pb2.JobUpdate]) -> None:
        done = []
        for update in updates:
            held = self._unconfirmed.get(update.job_run_id)
            if held is not None and held.update is update:
                del self._unconfirmed[update.job_run_id]
                done.append((update.job_run_id, held.version))
        if done:
            self._write(self._file.delete_updates, done)

    def restore(self, updates: Iterable[agent_pb2.JobUpdate]) -> bool:
        """Make taken updates pending again (a newer pending one wins); True if any was."""
        restored = False
        for update in updates:
            held = self._unconfirmed.get(update.job_run_id)
            if held is not None and held.update is update:
                del self._unconfirmed[update.job_run_id]
                if update.job_run_id not in self._pending:
                    self._pending[update.job_run_id] = held
                    restored = True
        return restored

    def connection_changed(self) -> None:
        """Every unconfirmed update goes again, unless a newer one of its run is pending."""
        for run, held in self._unconfirmed.items():
            if run not in self._pending:
                self._pending[run] = held
        self._unconfirmed.clear()

    def runs_owing_an_end(self) -> list[str]:
        held = [*self._pending.values(), *self._unconfirmed.values()]
        return list(dict.fromkeys(h.update.job_run_id for h in held if h.final))

    @property
    def pending(self) -> int:
        return len(self._pending)


def _parse(stored: UpdateRow) -> agent_pb2.JobUpdate | None:
    if zlib.crc32(stored.payload) != stored.crc:
        return None
    try:
        update = agent_pb2.JobUpdate.FromString(stored.payload)
    except DecodeError:
        return None
    return update if update.job_run_id == stored.job_run_id else None
