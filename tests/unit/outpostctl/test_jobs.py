"""`jobs list` and `jobs show`: a run's attempt and lease, as an operator reads them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2
from outpostctl import output
from outpostctl.jobs import attempt_text, detail_fields, lease_text, runs_table
from outpostctl.scheduler_client import JobRun, JobRunDetail, _job_run

NOW = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


BASE = _job_run(scheduler_pb2.JobRun(id="jr_1", discovery="lab", trigger="manual", state=agent_pb2.JOB_STATE_RUNNING))


def leased(attempt: int, lease: datetime | None) -> JobRun:
    return dataclasses.replace(BASE, attempt=attempt, lease_expires_at=lease)


def test_the_client_record_maps_attempt_and_lease_from_the_protobuf_run() -> None:
    lease = scheduler_pb2.JobRun(id="jr_2", attempt=2)
    lease.lease_expires_at.FromDatetime(NOW)
    run = _job_run(lease)
    assert (run.attempt, run.lease_expires_at) == (2, NOW)


def test_a_retried_leased_run_shows_its_attempt_and_when_its_lease_runs_out() -> None:
    run = leased(2, NOW + timedelta(seconds=45))
    assert (attempt_text(run), lease_text(run, NOW)) == ("2", "in 45s")


def test_an_expired_lease_says_so_and_an_unleased_run_shows_dashes() -> None:
    assert lease_text(leased(1, NOW - timedelta(seconds=12)), NOW) == "expired 12s ago"
    assert (attempt_text(leased(0, None)), lease_text(leased(0, None), NOW)) == ("-", "-")
    assert (attempt_text(BASE), lease_text(BASE, NOW)) == ("-", "-")  # never claimed


def test_list_and_show_carry_the_attempt_and_lease() -> None:
    run = leased(3, datetime.now(UTC) + timedelta(minutes=10))
    console = Console(width=250, record=True)
    console.print(runs_table([run]))
    header, row = console.export_text().splitlines()
    assert header.split()[4:6] == ["ATTEMPT", "LEASE"]
    assert row.split()[4:7] == ["3", "in", "9m"]
    shown = dict(detail_fields(JobRunDetail(run, None)))
    assert shown["attempt"] == "3"
    assert str(shown["lease expires"]).endswith("(in 9m)")


def test_a_queued_run_says_why_it_waits_in_the_table_and_in_show(monkeypatch: pytest.MonkeyPatch) -> None:
    message = scheduler_pb2.JobRun(
        id="jr_3",
        discovery="lab",
        trigger="manual",
        state=agent_pb2.JOB_STATE_QUEUED,
        target_collector="nosuch",
        reason="started by alice",
        waiting_reason="no collector named 'nosuch' is registered",
    )
    run = _job_run(message)
    console = Console(width=400, record=True)
    monkeypatch.setattr(output, "stdout", console)  # the table fits its columns to the terminal
    console.print(runs_table([run]))
    assert "waiting: no collector named 'nosuch' is registered" in console.export_text()
    shown = dict(detail_fields(JobRunDetail(run, None)))
    assert shown["waiting"] == "no collector named 'nosuch' is registered"
    assert shown["reason"] == "started by alice"
    finished = dataclasses.replace(run, state="cancelled", reason="cancelled by alice")
    assert "waiting" not in dict(detail_fields(JobRunDetail(finished, None)))


def test_show_says_how_many_observations_were_skipped_as_stale_and_json_carries_the_count() -> None:
    assert _job_run(scheduler_pb2.JobRun(id="jr_3", observations_stale=2)).observations_stale == 2
    quiet = dict(detail_fields(JobRunDetail(BASE, None)))
    stale = dict(detail_fields(JobRunDetail(dataclasses.replace(BASE, observations_stale=2), None)))
    assert quiet["stale observations"] == "0"
    assert stale["stale observations"] == "2 (skipped: older than what another run recorded for the device)"
    assert output.plain(dataclasses.replace(BASE, observations_stale=2))["observations_stale"] == 2
