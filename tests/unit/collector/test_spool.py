"""The durable spool: written before sent, deleted on its ack, bounded, checked, windowed."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from outpost.agent.v1 import agent_pb2
from services.collector.store.spool import SEND_WINDOW, Spool, SpoolError
from services.collector.store.spool_file import FILE_NAME

ROOT = Path(__file__).resolve().parents[3]
JS = agent_pb2.JobState
DAY = 86400.0


class Clock:
    """A clock the test moves by hand (the spool takes its clocks as arguments)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def batch(sequence: int, run: str = "jr_1", attempt: int = 1, devices: int = 2) -> agent_pb2.ResultBatch:
    return agent_pb2.ResultBatch(
        job_run_id=run,
        attempt=attempt,
        sequence=sequence,
        devices=[agent_pb2.DeviceObservation(ip=f"10.0.0.{i}", hostname="host-x" * 20) for i in range(devices)],
    )


def update(run: str, state: int, attempt: int = 1) -> agent_pb2.JobUpdate:
    return agent_pb2.JobUpdate(job_run_id=run, state=state, attempt=attempt)  # type: ignore[arg-type]


def sequences(batches: list[agent_pb2.ResultBatch]) -> list[int]:
    return [b.sequence for b in batches]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_spool(data_dir: Path) -> Iterator[Callable[..., Spool]]:
    opened: list[Spool] = []

    def open_spool(**options: Any) -> Spool:
        spool = Spool.open(data_dir, **options)
        opened.append(spool)
        return spool

    yield open_spool
    for spool in opened:
        spool.close()


def corrupt_payload(data_dir: Path, sequence: int) -> None:
    """Flip bytes of one stored batch behind the spool's back, leaving its CRC as it was."""
    with sqlite3.connect(data_dir / FILE_NAME) as db:
        (payload,) = db.execute("SELECT payload FROM batches WHERE sequence = ?", (sequence,)).fetchone()
        damaged = bytearray(payload)
        damaged[len(damaged) // 2] ^= 0xFF
        db.execute("UPDATE batches SET payload = ? WHERE sequence = ?", (bytes(damaged), sequence))


async def test_a_batch_is_held_until_its_ack_and_survives_a_reopen(open_spool: Callable[..., Spool]) -> None:
    spool = open_spool()
    for sequence in (1, 2, 3):
        await spool.put_batch(batch(sequence))
    assert spool.changed.is_set()
    assert sequences(spool.take_unsent_batches()) == [1, 2, 3]
    spool.ack("jr_1", 1, 2)
    spool.ack("jr_1", 2, 3)  # another attempt's identity: not this batch
    spool.close()

    again = open_spool()
    assert again.unacked == 2
    assert sequences(again.take_unsent_batches()) == [1, 3]
    status = again.status()
    assert status.batches == 2 and status.bytes == sum(len(batch(s).SerializeToString()) for s in (1, 3))
    assert status.oldest_unix_ms > 0


async def test_the_file_is_in_wal_mode_with_full_sync(open_spool: Callable[..., Spool], data_dir: Path) -> None:
    open_spool()
    with sqlite3.connect(data_dir / FILE_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_full_spool_drops_the_oldest_batches_and_counts_them(open_spool: Callable[..., Spool]) -> None:
    size = len(batch(1).SerializeToString())
    spool = open_spool(max_bytes=3 * size + size // 2)
    with capture_logs() as logs:
        for sequence in range(1, 6):
            await spool.put_batch(batch(sequence))

    assert sequences(spool.take_unsent_batches()) == [3, 4, 5]
    status = spool.status()
    assert (status.batches, status.dropped_full, status.dropped_devices) == (3, 2, 4)
    assert status.bytes <= status.max_bytes
    assert [e["event"] for e in logs].count("spool_full_dropped_oldest") == 1


async def test_a_batch_larger_than_the_whole_spool_is_dropped_and_counted(open_spool: Callable[..., Spool]) -> None:
    spool = open_spool(max_bytes=100)
    with capture_logs() as logs:
        await spool.put_batch(batch(1, devices=5))
    assert spool.unacked == 0
    assert (spool.status().dropped_full, spool.status().dropped_devices) == (1, 5)
    assert [e["event"] for e in logs] == ["spool_batch_too_large"]


async def test_batches_older_than_the_max_age_expire_and_are_counted(open_spool: Callable[..., Spool]) -> None:
    wall, mono = Clock(1_800_000_000.0), Clock(100.0)
    spool = open_spool(max_age=7 * DAY, wall_clock=wall, clock=mono)
    await spool.put_batch(batch(1, devices=3))
    await spool.put_batch(batch(2, devices=4))
    wall.now += 5 * DAY
    await spool.put_batch(batch(3))

    wall.now += 2 * DAY + 1
    mono.now += 61  # the spool looks at most once a minute
    status = spool.status()
    assert (status.batches, status.dropped_expired, status.dropped_devices) == (1, 2, 7)
    assert status.max_age_seconds == 7 * 86400
    assert sequences(spool.take_unsent_batches()) == [3]


async def test_drop_counters_survive_a_reopen(open_spool: Callable[..., Spool]) -> None:
    size = len(batch(1).SerializeToString())
    wall = Clock(1_800_000_000.0)
    spool = open_spool(max_bytes=2 * size, max_age=DAY, wall_clock=wall)
    for sequence in (1, 2, 3):
        await spool.put_batch(batch(sequence))
    wall.now += 2 * DAY
    spool.expire()
    before = spool.status()
    spool.close()

    after = open_spool(max_bytes=2 * size, max_age=DAY, wall_clock=wall).status()
    assert (before.dropped_full, before.dropped_expired, before.dropped_devices) == (1, 2, 6)
    assert (after.dropped_full, after.dropped_expired, after.dropped_devices) == (1, 2, 6)
    assert after.batches == 0


async def test_a_corrupt_row_found_on_open_is_dropped_counted_and_never_sent(
    open_spool: Callable[..., Spool], data_dir: Path
) -> None:
    spool = open_spool()
    for sequence in (1, 2, 3):
        await spool.put_batch(batch(sequence, devices=3))
    spool.close()
    corrupt_payload(data_dir, 2)

    with capture_logs() as logs:
        again = open_spool()
    assert sequences(again.take_unsent_batches()) == [1, 3]
    status = again.status()
    assert (status.batches, status.dropped_corrupt, status.dropped_devices) == (2, 1, 3)
    assert "spool_batches_corrupt" in [e["event"] for e in logs]
    again.close()
    assert open_spool().status().dropped_corrupt == 1  # counted once, and the row is gone


async def test_a_row_damaged_while_open_is_caught_before_it_is_sent(
    open_spool: Callable[..., Spool], data_dir: Path
) -> None:
    spool = open_spool()
    for sequence in (1, 2, 3):
        await spool.put_batch(batch(sequence))
    corrupt_payload(data_dir, 1)

    assert sequences(spool.take_unsent_batches()) == [2, 3]
    assert spool.status().dropped_corrupt == 1
    assert spool.unacked == 2


def test_a_file_that_is_not_a_database_is_moved_aside_and_a_fresh_spool_starts(
    open_spool: Callable[..., Spool], data_dir: Path
) -> None:
    data_dir.mkdir()
    (data_dir / FILE_NAME).write_bytes(b"this is not an SQLite file" * 100)
    with capture_logs() as logs:
        spool = open_spool()
    assert spool.unacked == 0
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["spool_file_corrupt"]
    assert len(list(data_dir.glob(f"{FILE_NAME}.corrupt-*"))) == 1


def test_an_unusable_data_dir_is_a_spool_error_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SpoolError, match="cannot open the spool"):
        Spool.open(blocker / "data")


async def test_at_most_the_window_is_in_flight_and_an_ack_makes_room(open_spool: Callable[..., Spool]) -> None:
    spool = open_spool()
    for sequence in range(1, SEND_WINDOW + 4):
        await spool.put_batch(batch(sequence))

    assert sequences(spool.take_unsent_batches()) == list(range(1, SEND_WINDOW + 1))
    assert spool.take_unsent_batches() == []
    spool.changed.clear()
    spool.ack("jr_1", 1, 5)
    assert spool.changed.is_set()
    assert sequences(spool.take_unsent_batches()) == [SEND_WINDOW + 1]
    assert spool.in_flight == SEND_WINDOW


async def test_a_new_connection_sends_every_unacked_batch_again_in_order(open_spool: Callable[..., Spool]) -> None:
    spool = open_spool()
    for sequence in (1, 2, 3, 4):
        await spool.put_batch(batch(sequence))
    assert sequences(spool.take_unsent_batches()) == [1, 2, 3, 4]
    spool.ack("jr_1", 1, 2)

    spool.connection_changed()
    assert sequences(spool.take_unsent_batches()) == [1, 3, 4]


async def test_while_throttled_nothing_is_sent_and_afterwards_the_in_flight_go_again(
    open_spool: Callable[..., Spool],
) -> None:
    mono = Clock(100.0)
    spool = open_spool(clock=mono)
    for sequence in (1, 2):
        await spool.put_batch(batch(sequence))
    assert sequences(spool.take_unsent_batches()) == [1, 2]

    assert spool.throttle(mono.now + 5) is True
    assert spool.throttle(mono.now + 3) is False  # same episode; the later end stands
    await spool.put_batch(batch(3))
    spool.ack("jr_1", 1, 1)  # committed before the gateway throttled
    mono.now += 4
    assert spool.take_unsent_batches() == []
    assert spool.throttled

    mono.now += 1
    assert sequences(spool.take_unsent_batches()) == [2, 3]
    assert not spool.throttled
    assert spool.throttle(mono.now + 1) is True  # a new episode


async def test_a_final_update_waits_until_all_its_runs_batches_were_sent(open_spool: Callable[..., Spool]) -> None:
    spool = open_spool()
    await spool.put_batch(batch(1, run="jr_1"))
    spool.put_update(update("jr_1", JS.JOB_STATE_RUNNING))
    spool.put_update(update("jr_2", JS.JOB_STATE_SUCCEEDED))
    assert [u.job_run_id for u in spool.take_updates()] == ["jr_1", "jr_2"]  # progress goes at once

    spool.put_update(update("jr_1", JS.JOB_STATE_SUCCEEDED))
    assert spool.take_updates() == []
    assert sequences(spool.take_unsent_batches()) == [1]
    [final] = spool.take_updates()
    assert (final.job_run_id, final.state) == ("jr_1", JS.JOB_STATE_SUCCEEDED)


async def test_a_throttle_holds_back_a_final_update_whose_batches_are_unsent(
    open_spool: Callable[..., Spool],
) -> None:
    mono = Clock(100.0)
    spool = open_spool(clock=mono)
    spool.throttle(mono.now + 1)
    await spool.put_batch(batch(1))
    spool.put_update(update("jr_1", JS.JOB_STATE_FAILED))
    assert spool.take_unsent_batches() == [] and spool.take_updates() == []
    mono.now += 1
    assert sequences(spool.take_unsent_batches()) == [1]
    assert [u.state for u in spool.take_updates()] == [JS.JOB_STATE_FAILED]


async def test_after_a_restart_final_updates_are_kept_and_progress_is_dropped(
    open_spool: Callable[..., Spool],
) -> None:
    spool = open_spool()
    spool.put_update(update("jr_1", JS.JOB_STATE_RUNNING))
    spool.put_update(update("jr_2", JS.JOB_STATE_RUNNING))
    spool.put_update(update("jr_2", JS.JOB_STATE_CANCELLED))
    spool.close()

    again = open_spool()
    assert [(u.job_run_id, u.state) for u in again.take_updates()] == [("jr_2", JS.JOB_STATE_CANCELLED)]
    assert again.runs_owing_an_end() == ["jr_2"]


async def test_a_taken_update_stays_until_confirmed_and_goes_again_on_a_new_connection(
    open_spool: Callable[..., Spool],
) -> None:
    spool = open_spool()
    spool.put_update(update("jr_1", JS.JOB_STATE_SUCCEEDED))
    spool.put_update(update("jr_2", JS.JOB_STATE_SUCCEEDED))
    first = spool.take_updates()
    assert spool.take_updates() == []

    spool.connection_changed()
    again = spool.take_updates()
    assert [u.job_run_id for u in again] == ["jr_1", "jr_2"]
    spool.confirm_updates(again[:1])
    assert spool.runs_owing_an_end() == ["jr_2"]
    spool.confirm_updates(first[1:])  # an update from before the reconnect: still the same one
    assert spool.runs_owing_an_end() == []
    spool.close()

    assert open_spool().take_updates() == []


async def test_a_newer_update_is_not_forgotten_when_an_older_one_is_confirmed(
    open_spool: Callable[..., Spool],
) -> None:
    spool = open_spool()
    spool.put_update(update("jr_1", JS.JOB_STATE_RUNNING))
    [progress] = spool.take_updates()
    spool.put_update(update("jr_1", JS.JOB_STATE_SUCCEEDED))
    spool.confirm_updates([progress])
    spool.restore_updates([progress])  # nothing to restore: a newer one is queued
    [final] = spool.take_updates()
    assert final.state == JS.JOB_STATE_SUCCEEDED
    spool.close()
    assert [u.state for u in open_spool().take_updates()] == [JS.JOB_STATE_SUCCEEDED]


async def test_a_failing_write_holds_up_the_scan_until_the_disk_has_room(
    open_spool: Callable[..., Spool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.collector.store.spool.RETRY_INITIAL", 0.01)
    spool = open_spool()
    await spool.put_batch(batch(1))
    # A full disk, as SQLite reports it: the file may not grow past its current pages.
    writer = spool._file._writer
    await spool._file.run(lambda: writer.execute("PRAGMA max_page_count = 1"))
    big = batch(2, devices=500)

    with capture_logs() as logs:
        put = asyncio.create_task(spool.put_batch(big))
        await wait_for(lambda: any(e["event"] == "spool_write_failed" for e in logs))
        assert not put.done()  # the scan waits: the batch is not lost
        assert spool.unacked == 1
        await spool._file.run(lambda: writer.execute("PRAGMA max_page_count = 1073741823"))
        async with asyncio.timeout(5):
            await put
    assert spool.unacked == 2
    assert [e["event"] for e in logs].count("spool_write_failed") == 1
    assert "spool_write_recovered" in [e["event"] for e in logs]


async def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def record(line: str, put: set[int], acked: set[int]) -> None:
    verb, number = line.split()
    (put if verb == "put" else acked).add(int(number))


def test_a_writer_killed_at_random_moments_leaves_every_committed_batch_intact(data_dir: Path) -> None:
    rng = random.Random()
    committed: dict[str, set[int]] = {}
    deadline = time.monotonic() + 90
    for round_ in range(10):
        run = f"jr_{round_}"
        kill_after = rng.randrange(1, 60)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.unit.collector.spool_writer", str(data_dir), run],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        put: set[int] = set()
        acked: set[int] = set()
        try:
            assert child.stdout is not None
            while len(put) < kill_after:
                line = child.stdout.readline()
                assert line, f"the writer ended early: {child.stderr.read() if child.stderr else ''}"
                assert time.monotonic() < deadline, "the writer is too slow"
                record(line, put, acked)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        # What it printed before dying counts too: an ack it announced may have landed.
        assert child.stdout is not None and child.stderr is not None
        for line in child.stdout.read().splitlines():
            record(line, put, acked)
        child.stdout.close()
        child.stderr.close()
        committed[run] = put - acked

        with sqlite3.connect(data_dir / FILE_NAME) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = db.execute("SELECT job_run_id, sequence, size, crc, payload FROM batches").fetchall()
        for _, _, size, crc, payload in rows:
            assert len(payload) == size and zlib.crc32(payload) == crc
        stored = {(r[0], r[1]) for r in rows}
        for earlier_run, numbers in committed.items():
            assert {(earlier_run, n) for n in numbers} <= stored

        spool = Spool.open(data_dir, max_bytes=1 << 30)
        try:
            assert spool.status().dropped_corrupt == 0
            assert spool.unacked == len(rows)
        finally:
            spool.close()
