"""The spool's SQLite file: schema, durability settings, and the one thread that writes.

`spool.db` in the data directory, in WAL mode with `synchronous=FULL`: a commit returns
only once its WAL frames are on disk, so a batch the spool reports as written survives a
crash or power cut, and a transaction cut short by one is rolled back on the next open.
Tables:

    batches   one row per unacknowledged ResultBatch: its identity, device count, size,
              CRC32 of the serialized bytes, wall-clock written_at, and the bytes
    updates   the newest JobUpdate per run (with a version, so confirming an older one
              never deletes a newer one)
    counters  drop counters, kept here so they survive restarts

Why a writer thread: with `synchronous=FULL` every commit (a batch, an ack, an update)
waits for an fsync, which on a busy disk takes tens to hundreds of milliseconds. The event
loop also times probes (round-trip times) and heartbeats, so commits must not stall it.
All writes therefore run on one dedicated thread, in the order they were submitted (one
worker: a FIFO without locks); reads (one row, no fsync, never blocked by the writer in
WAL mode) stay on the caller's thread on a second connection.

A file SQLite reports as corrupt or not a database is moved aside (`spool.db.corrupt-<ms>`)
and a fresh spool is started, logged as an error: a damaged file must not keep the
collector from working. Any other error opening the file is `SpoolError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

FILE_NAME = "spool.db"
SCHEMA_VERSION = 1
COUNTERS = ("dropped_full", "dropped_expired", "dropped_corrupt", "dropped_devices")
CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
READ_BUSY_TIMEOUT_MS = 1000  # reads run on the event loop: never wait long
WRITE_BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    devices INTEGER NOT NULL,
    size INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    written_at_ms INTEGER NOT NULL,
    payload BLOB NOT NULL,
    UNIQUE (job_run_id, attempt, sequence)
);
CREATE TABLE IF NOT EXISTS updates (
    job_run_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    final INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

T = TypeVar("T")


class SpoolError(Exception):
    """The spool file cannot be opened; the message says why and where."""


@dataclass(frozen=True)
class BatchRow:
    """A stored batch without its bytes: what the spool keeps in memory per batch."""

    row_id: int
    job_run_id: str
    attempt: int
    sequence: int
    devices: int
    size: int
    written_at_ms: int


@dataclass(frozen=True)
class UpdateRow:
    job_run_id: str
    version: int
    final: bool
    crc: int
    payload: bytes


class SpoolFile:
    """One open `spool.db`; `close()` waits for every submitted write."""

    def __init__(self, path: Path, writer: sqlite3.Connection, reader: sqlite3.Connection) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-writer")
        self._closed = False

    @classmethod
    def open(cls, data_dir: Path) -> SpoolFile:
        """Open (or create) `data_dir/spool.db`; a corrupt file is moved aside first."""
        path = data_dir / FILE_NAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                return cls._open(path)
            except sqlite3.DatabaseError as exc:
                if not is_corrupt(exc):
                    raise
                return cls.open_fresh(data_dir, exc)
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"cannot open the spool {path}: {exc}") from exc

    @classmethod
    def open_fresh(cls, data_dir: Path, error: sqlite3.DatabaseError) -> SpoolFile:
        """Move a file SQLite found damaged aside and start an empty spool in its place."""
        path = data_dir / FILE_NAME
        if not is_corrupt(error):
            raise SpoolError(f"cannot open the spool {path}: {error}") from error
        try:
            aside = _move_aside(path)
            log.error(
                "spool_file_corrupt",
                path=str(path),
                moved_to=str(aside),
                error=str(error),
                advice="the batches it held are lost; the collector starts a fresh spool",
            )
            return cls._open(path)
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"cannot open the spool {path}: {exc}") from exc

    @classmethod
    def _open(cls, path: Path) -> SpoolFile:
        writer = _connect(path, WRITE_BUSY_TIMEOUT_MS)
        try:
            mode = writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise SpoolError(f"cannot open the spool {path}: the file system does not support WAL ({mode})")
            writer.execute("PRAGMA synchronous=FULL")
            version = writer.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SpoolError(
                    f"the spool {path} was written by a newer collector (schema {version}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade the collector or move the file away"
                )
            with _transaction(writer):
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        writer.execute(statement)
                writer.executemany(
                    "INSERT OR IGNORE INTO counters (name, value) VALUES (?, 0)", [(n,) for n in COUNTERS]
                )
                writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            reader = _connect(path, READ_BUSY_TIMEOUT_MS)
        except BaseException:
            writer.close()
            raise
        return cls(path, writer, reader)

    # --- reads (caller's thread) ---------------------------------------------------
    def scan_batches(self) -> Iterator[tuple[BatchRow, bytes, int]]:
        """Every stored batch in write order, with its bytes and stored CRC (at open only)."""
        rows = self._writer.execute(
            "SELECT id, job_run_id, attempt, sequence, devices, size, written_at_ms, payload, crc "
            "FROM batches ORDER BY id"
        )
        for row in rows:
            yield BatchRow(*row[:7]), bytes(row[7]), row[8]

    def read_updates(self) -> list[UpdateRow]:
        rows = self._writer.execute("SELECT job_run_id, version, final, crc, payload FROM updates ORDER BY version")
        return [UpdateRow(r[0], r[1], bool(r[2]), r[3], bytes(r[4])) for r in rows]

    def read_counters(self) -> dict[str, int]:
        counters = dict.fromkeys(COUNTERS, 0)
        for name, value in self._writer.execute("SELECT name, value FROM counters"):
            if name in counters:  # a newer collector may have counted more kinds
                counters[name] = value
        return counters

    def read_payload(self, row_id: int) -> tuple[bytes, int] | None:
        """A batch's bytes and stored CRC; None if the row is gone."""
        row = self._reader.execute("SELECT payload, crc FROM batches WHERE id = ?", (row_id,)).fetchone()
        return None if row is None else (bytes(row[0]), row[1])

    # --- writes (the writer thread, via submit/run) --------------------------------
    def insert_batch(
        self,
        row: BatchRow,
        payload: bytes,
        crc: int,
        drop_ids: Iterable[int] = (),
        counts: dict[str, int] | None = None,
    ) -> int:
        """Store one batch, dropping `drop_ids` and adding `counts`, in one transaction."""
        with _transaction(self._writer):
            self._delete(drop_ids, counts)
            cursor = self._writer.execute(
                "INSERT OR REPLACE INTO batches "
                "(job_run_id, attempt, sequence, devices, size, crc, written_at_ms, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row.job_run_id, row.attempt, row.sequence, row.devices, row.size, crc, row.written_at_ms, payload),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def delete_batches(self, row_ids: Iterable[int], counts: dict[str, int] | None = None) -> None:
        """Forget batches (acked, expired, corrupt) and add `counts`, in one transaction."""
        with _transaction(self._writer):
            self._delete(row_ids, counts)

    def add_counts(self, counts: dict[str, int]) -> None:
        with _transaction(self._writer):
            self._delete((), counts)

    def put_update(self, update: UpdateRow) -> None:
        with _transaction(self._writer):
            self._writer.execute(
                "INSERT OR REPLACE INTO updates (job_run_id, version, final, crc, payload) VALUES (?, ?, ?, ?, ?)",
                (update.job_run_id, update.version, int(update.final), update.crc, update.payload),
            )

    def delete_update(self, job_run_id: str, version: int) -> None:
        """Forget a run's update unless a newer version replaced it meanwhile."""
        with _transaction(self._writer):
            self._writer.execute("DELETE FROM updates WHERE job_run_id = ? AND version = ?", (job_run_id, version))

    def delete_updates(self, versions: Iterable[tuple[str, int]]) -> None:
        with _transaction(self._writer):
            self._writer.executemany("DELETE FROM updates WHERE job_run_id = ? AND version = ?", list(versions))

    def _delete(self, row_ids: Iterable[int], counts: dict[str, int] | None) -> None:
        self._writer.executemany("DELETE FROM batches WHERE id = ?", [(i,) for i in row_ids])
        for name, value in (counts or {}).items():
            if value:
                self._writer.execute("UPDATE counters SET value = value + ? WHERE name = ?", (value, name))

    # --- the writer thread -----------------------------------------------------------
    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Queue a write; writes run one at a time in the order submitted."""
        if self._closed:
            raise SpoolError(f"the spool {self.path} is closed")
        return self._executor.submit(fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Queue a write and wait for its commit without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def close(self) -> None:
        """Wait for the queued writes, then close both connections."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self._reader.close()
        self._writer.close()


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
    # check_same_thread=False: the writer connection is opened here and used by the
    # writer thread; each connection is only ever used by one thread at a time.
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return connection


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; ROLLBACK if anything (the COMMIT included) fails."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        raise


def is_corrupt(error: sqlite3.Error) -> bool:
    """SQLite says the file is damaged or not a database (not: busy, full, no permission)."""
    return getattr(error, "sqlite_errorcode", None) in CORRUPT_CODES


def _move_aside(path: Path) -> Path:
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time() * 1000)}")
    path.replace(aside)
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            sidecar.replace(aside.with_name(aside.name + suffix))
    return aside
