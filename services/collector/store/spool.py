"""The durable spool: result batches and job updates the collector still owes the server.

Theory of operation
-------------------
Batches. `put_batch()` writes a batch to `spool.db` (see `spool_file`) in its own
transaction and returns only once it is committed; only then may a connection send it.
It is deleted when a BatchAck with its identity `(job_run_id, attempt, sequence)` arrives,
so neither a broken connection nor a crashed collector loses it, and a resend is harmless
(the gateway deduplicates by identity). Memory holds each batch's metadata only; its bytes
are read back, and their CRC32 checked, when it is sent. A row whose CRC or parse fails
(a torn page on a lying disk, a damaged file) is dropped and counted `dropped_corrupt`,
never sent.

Sending is windowed: `take_unsent_batches()` hands out the oldest unsent batches, at most
`window` (16) in flight unacknowledged. `connection_changed()` makes every unacknowledged
batch unsent again (the new connection must carry them). `throttle(until)` stops batches
until the monotonic time `until`; when it has passed, every batch still in flight is
unsent again, because the gateway that throttled did not commit it.

Updates. The newest update per run is kept, in the file too (see `spool_updates`); a
run's final update is handed out only once all the run's batches were sent, and kept
until `confirm_updates()`; after a restart only final updates remain.

Bounds. Batch bytes are bounded by `max_bytes` (the serialized sizes; the file adds a
few percent): a batch that would exceed it first drops the OLDEST batches, in the same
transaction (`dropped_full`). Batches older than `max_age` are dropped (`dropped_expired`,
checked at most once a minute). Every drop also adds the batch's devices to
`dropped_devices`; the counters live in the file and survive restarts.

Threads. Every write goes to the file's one writer thread (see `spool_file`: with
`synchronous=FULL` each commit waits for an fsync, which must not stall the event loop
that also times probes and heartbeats). `put_batch()` awaits its commit; acks, updates
and counters are queued without waiting (one thread keeps them in order, and losing one
to a crash only means a harmless resend). Reads of one row stay on the event loop.

Write failures (disk full, I/O error) are logged once per episode; `put_batch()` keeps
the batch in memory and retries after a capped full-jitter backoff (`outpost.backoff`),
which holds up the scan that produced it (backpressure) instead of losing the batch
silently.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from google.protobuf.message import DecodeError

from outpost.agent.v1 import agent_pb2
from outpost.backoff import Backoff
from services.collector.store.spool_file import COUNTERS, BatchRow, SpoolError, SpoolFile
from services.collector.store.spool_updates import SpoolUpdates

log = structlog.get_logger(__name__)

SEND_WINDOW = 16
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_AGE = 7 * 24 * 3600.0
EXPIRY_INTERVAL = 60.0
RETRY_INITIAL = 0.5
RETRY_MAX = 30.0
MAX_UINT32 = 2**32 - 1

BatchKey = tuple[str, int, int]
"""(job_run_id, attempt, sequence): a batch's identity, as BatchAck names it."""

__all__ = ["DEFAULT_MAX_AGE", "DEFAULT_MAX_BYTES", "SEND_WINDOW", "Spool", "SpoolError"]


class Spool:
    """The collector's durable outbox; open with `Spool.open(data_dir)`, `close()` at exit."""

    def __init__(
        self,
        file: SpoolFile,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age: float = DEFAULT_MAX_AGE,
        window: int = SEND_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.window = window
        self.changed = asyncio.Event()  # set when there is something new to send
        self._file = file
        self._clock = clock
        self._wall_clock = wall_clock
        self._held: OrderedDict[BatchKey, BatchRow] = OrderedDict()  # write order
        self._unsent: OrderedDict[BatchKey, None] = OrderedDict()
        self._unsent_by_run: Counter[str] = Counter()
        self._in_flight: set[BatchKey] = set()
        self._bytes = 0
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._updates = SpoolUpdates(file, self._submit)
        self._throttled_until: float | None = None
        self._next_expiry = 0.0
        self._put_lock = asyncio.Lock()
        self._write_failing = False
        self._full_logged = False
        self._load()

    @classmethod
    def open(cls, data_dir: Path, **options: Any) -> Spool:
        """Open `data_dir/spool.db`; a file found damaged while loading is moved aside.

        Raises SpoolError when the file cannot be opened at all (permissions, a newer schema).
        """
        file = SpoolFile.open(data_dir)
        try:
            return cls(file, **options)
        except sqlite3.DatabaseError as exc:
            file.close()
            return cls(SpoolFile.open_fresh(data_dir, exc), **options)

    # --- batches -----------------------------------------------------------------------
    async def put_batch(self, batch: agent_pb2.ResultBatch) -> None:
        """Write `batch` durably; return once committed (retrying while the disk fails)."""
        payload = batch.SerializeToString()
        key = _key_of(batch)
        row = BatchRow(0, *key, len(batch.devices), len(payload), int(self._wall_clock() * 1000))
        crc = zlib.crc32(payload)
        async with self._put_lock:  # one at a time: each sees the bytes the previous one left
            self._expire_due()
            if row.size > self.max_bytes:
                log.error(
                    "spool_batch_too_large",
                    job_run_id=row.job_run_id,
                    size=row.size,
                    max_bytes=self.max_bytes,
                    advice="raise --spool-max-bytes; this batch is dropped",
                )
                self._count({"dropped_full": 1, "dropped_devices": row.devices}, persist=True)
                return
            backoff = Backoff(RETRY_INITIAL, RETRY_MAX)
            while True:
                victims = self._oldest_to_fit(row.size)
                counts = {"dropped_full": len(victims), "dropped_devices": sum(v.devices for v in victims)}
                try:
                    row_id = await self._file.run(
                        self._file.insert_batch, row, payload, crc, [v.row_id for v in victims], counts
                    )
                    break
                except SpoolError:
                    log.warning("spool_closed_batch_lost", job_run_id=row.job_run_id, sequence=row.sequence)
                    return
                except (sqlite3.Error, OSError) as exc:
                    self._write_failed(exc)
                    await asyncio.sleep(backoff.next_delay())
            self._write_recovered()
            for victim in victims:
                self._forget(_key_of_row(victim))
            self._count(counts)
            self._log_full(victims)
            self._forget(key)  # the same identity written again replaced the older row
            self._remember(replace(row, row_id=row_id))
        self.changed.set()

    def take_unsent_batches(self) -> list[agent_pb2.ResultBatch]:
        """The oldest unsent batches that fit in the send window; they count as in flight.

        Nothing while throttled. A batch whose stored bytes fail their check is dropped here.
        """
        self._expire_due()
        if not self._sending_allowed():
            return []
        out: list[agent_pb2.ResultBatch] = []
        while self._unsent and len(self._in_flight) < self.window:
            key = next(iter(self._unsent))
            row = self._held[key]
            try:
                batch = self._read(row)
            except sqlite3.OperationalError as exc:  # busy or I/O: try again on the next turn
                log.warning("spool_read_failed", error=str(exc))
                break
            if batch is None:
                continue
            del self._unsent[key]
            self._unsent_by_run[key[0]] -= 1
            self._in_flight.add(key)
            out.append(batch)
        return out

    def ack(self, job_run_id: str, attempt: int, sequence: int) -> None:
        """The gateway committed this batch: forget it (an unknown identity is ignored)."""
        row = self._forget((job_run_id, attempt, sequence))
        if row is None:
            return
        self._submit(self._file.delete_batches, [row.row_id])
        if self._unsent:
            self.changed.set()  # the window has room again

    def connection_changed(self) -> None:
        """A new connection: every unacknowledged batch and unconfirmed update goes again."""
        self._all_unsent()
        self._updates.connection_changed()
        if self._held or self._updates.pending:
            self.changed.set()

    def throttle(self, until: float) -> bool:
        """Send no batch before monotonic time `until`; True if this starts a new episode."""
        starts = self._throttled_until is None
        self._throttled_until = max(until, self._throttled_until or until)
        return starts

    @property
    def throttled(self) -> bool:
        return self._throttled_until is not None and self._clock() < self._throttled_until

    @property
    def unacked(self) -> int:
        return len(self._held)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # --- updates -----------------------------------------------------------------------
    def put_update(self, update: agent_pb2.JobUpdate) -> None:
        """Keep `update` as its run's newest; it is written to the file in the background."""
        self._updates.put(update)
        self.changed.set()

    def take_updates(self) -> list[agent_pb2.JobUpdate]:
        """Updates ready to send: progress at once, a final one once its run's batches were sent."""
        return self._updates.take(lambda run: self._unsent_by_run[run] > 0)

    def confirm_updates(self, updates: Iterable[agent_pb2.JobUpdate]) -> None:
        """The server has read these (taken) updates: forget them, unless a newer one came."""
        self._updates.confirm(updates)

    def restore_updates(self, updates: Iterable[agent_pb2.JobUpdate]) -> None:
        """Put back taken updates a connection could not send (a newer queued one wins)."""
        if self._updates.restore(updates):
            self.changed.set()

    def runs_owing_an_end(self) -> list[str]:
        """Runs whose final update the server may not have read yet."""
        return self._updates.runs_owing_an_end()

    # --- status and lifetime -------------------------------------------------------------
    def status(self) -> agent_pb2.SpoolStatus:
        self._expire_due()
        oldest = next(iter(self._held.values())).written_at_ms if self._held else 0
        return agent_pb2.SpoolStatus(
            batches=len(self._held),
            bytes=self._bytes,
            max_bytes=self.max_bytes,
            max_age_seconds=min(int(self.max_age), MAX_UINT32),
            oldest_unix_ms=oldest,
            **self._counters,
        )

    def expire(self) -> None:
        """Drop the batches older than `max_age` now (the spool also does it once a minute)."""
        self._next_expiry = self._clock() + EXPIRY_INTERVAL
        cutoff = int((self._wall_clock() - self.max_age) * 1000)
        expired = []
        for row in self._held.values():
            if row.written_at_ms >= cutoff:
                break
            expired.append(row)
        if not expired:
            return
        for row in expired:
            self._forget(_key_of_row(row))
        counts = {"dropped_expired": len(expired), "dropped_devices": sum(r.devices for r in expired)}
        self._count(counts)
        self._submit(self._file.delete_batches, [r.row_id for r in expired], counts)
        log.warning(
            "spool_batches_expired",
            batches=len(expired),
            devices=counts["dropped_devices"],
            max_age_seconds=int(self.max_age),
        )

    def close(self) -> None:
        """Wait for the writes in progress, then close the file."""
        self._file.close()

    # --- internals ---------------------------------------------------------------------
    def _load(self) -> None:
        corrupt: list[BatchRow] = []
        for row, payload, crc in self._file.scan_batches():
            if _intact(row, payload, crc) is None:
                corrupt.append(row)
            else:
                self._remember(row)
        self._counters = self._file.read_counters()
        if corrupt:
            counts = {"dropped_corrupt": len(corrupt), "dropped_devices": sum(r.devices for r in corrupt)}
            self._file.delete_batches([r.row_id for r in corrupt], counts)
            self._count(counts)
            log.error("spool_batches_corrupt", batches=len(corrupt), path=str(self._file.path))
        self._updates.load()
        log.info(
            "spool_opened",
            path=str(self._file.path),
            batches=len(self._held),
            bytes=self._bytes,
            final_updates=self._updates.pending,
        )

    def _read(self, row: BatchRow) -> agent_pb2.ResultBatch | None:
        """A held batch from the file; None (and the row dropped) if it fails its check."""
        try:
            stored = self._file.read_payload(row.row_id)
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError:
            stored = None  # the page holding it is damaged
        batch = None if stored is None else _intact(row, *stored)
        if batch is None:
            self._forget(_key_of_row(row))
            counts = {"dropped_corrupt": 1, "dropped_devices": row.devices}
            self._count(counts)
            self._submit(self._file.delete_batches, [row.row_id], counts)
            log.error("spool_batch_corrupt", job_run_id=row.job_run_id, sequence=row.sequence, attempt=row.attempt)
        return batch

    def _remember(self, row: BatchRow) -> None:
        key = _key_of_row(row)
        self._held[key] = row
        self._unsent[key] = None
        self._unsent_by_run[row.job_run_id] += 1
        self._bytes += row.size

    def _forget(self, key: BatchKey) -> BatchRow | None:
        row = self._held.pop(key, None)
        if row is None:
            return None
        self._bytes -= row.size
        if key in self._unsent:
            del self._unsent[key]
            self._unsent_by_run[key[0]] -= 1
            if not self._unsent_by_run[key[0]]:
                del self._unsent_by_run[key[0]]
        self._in_flight.discard(key)
        return row

    def _all_unsent(self) -> None:
        self._unsent = OrderedDict.fromkeys(self._held)
        self._unsent_by_run = Counter(key[0] for key in self._held)
        self._in_flight.clear()

    def _sending_allowed(self) -> bool:
        if self._throttled_until is None:
            return True
        if self._clock() < self._throttled_until:
            return False
        self._throttled_until = None
        log.info("results_resumed", unacked=len(self._held), resent=len(self._in_flight))
        self._all_unsent()  # the throttling gateway did not commit what was in flight
        return True

    def _oldest_to_fit(self, size: int) -> list[BatchRow]:
        excess = self._bytes + size - self.max_bytes
        victims = []
        for row in self._held.values():
            if excess <= 0:
                break
            victims.append(row)
            excess -= row.size
        return victims

    def _expire_due(self) -> None:
        if self._held and self._clock() >= self._next_expiry:
            self.expire()

    def _count(self, counts: dict[str, int], *, persist: bool = False) -> None:
        for name, value in counts.items():
            self._counters[name] += value
        if persist:
            self._submit(self._file.add_counts, counts)

    def _log_full(self, victims: list[BatchRow]) -> None:
        """One warning when the spool starts dropping, not one per batch."""
        if victims and not self._full_logged:
            log.warning(
                "spool_full_dropped_oldest",
                batches=len(victims),
                devices=sum(v.devices for v in victims),
                max_bytes=self.max_bytes,
                advice="the server has not acknowledged results for a while; raise --spool-max-bytes to hold more",
            )
        self._full_logged = bool(victims)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """A write nobody waits for (acks, updates, counters); a failure is logged."""
        try:
            future = self._file.submit(fn, *args)
        except SpoolError:
            log.debug("spool_write_after_close", write=fn.__name__)
            return
        future.add_done_callback(self._background_write_done)

    def _background_write_done(self, future: concurrent.futures.Future[Any]) -> None:
        exc = future.exception()
        if exc is None:
            self._write_recovered()
        else:
            self._write_failed(exc)

    def _write_failed(self, exc: BaseException) -> None:
        if not self._write_failing:
            self._write_failing = True
            log.error(
                "spool_write_failed",
                path=str(self._file.path),
                error=str(exc),
                advice="free space on the --data-dir file system; scans wait until their results are written",
            )

    def _write_recovered(self) -> None:
        if self._write_failing:
            self._write_failing = False
            log.info("spool_write_recovered", path=str(self._file.path))


def _key_of(batch: agent_pb2.ResultBatch) -> BatchKey:
    return (batch.job_run_id, batch.attempt, batch.sequence)


def _key_of_row(row: BatchRow) -> BatchKey:
    return (row.job_run_id, row.attempt, row.sequence)


def _intact(row: BatchRow, payload: bytes, crc: int) -> agent_pb2.ResultBatch | None:
    """The batch if its bytes match their CRC and size and parse to the row's identity."""
    if len(payload) != row.size or zlib.crc32(payload) != crc:
        return None
    try:
        batch = agent_pb2.ResultBatch.FromString(payload)
    except DecodeError:
        return None
    return batch if _key_of(batch) == _key_of_row(row) else None
