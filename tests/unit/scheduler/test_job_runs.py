"""Job run state transitions, attempts, ids and the deadline rule, as pure functions."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from outpost import errors
from services.scheduler.domain import job_runs as rules
from services.scheduler.domain.discoveries import Discovery
from services.scheduler.domain.job_runs import JobRun, JobState, JobUpdate, Trigger

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DISCOVERY = Discovery(name="dmz-sweep", targets=("10.0.0.0/24",), zone="dmz", deadline_seconds=600, created_at=NOW)
UID = "uid-edge-7"
LEASE = 90


def queued() -> JobRun:
    return rules.new_run(DISCOVERY, trigger=Trigger.MANUAL, due_at=NOW, now=NOW, run_id="jr_1")


def dispatched() -> JobRun:
    return rules.claim(queued(), collector="edge-7", instance_uid=UID, gateway_id="gw-1", now=NOW, lease_seconds=LEASE)


def running() -> JobRun:
    run = rules.apply_update(
        dispatched(), JobUpdate("jr_1", JobState.RUNNING, targets_total=256), NOW, lease_seconds=LEASE
    )
    assert run is not None
    return run


def test_a_new_run_is_queued_for_where_its_discovery_points() -> None:
    run = queued()
    assert (run.state, run.target_zone, run.target_collector) == (JobState.QUEUED, "dmz", "")
    assert run.discovery_snapshot == DISCOVERY


def test_claiming_records_who_took_the_run_as_the_next_attempt_with_a_lease() -> None:
    run = dispatched()
    assert (run.state, run.collector, run.collector_instance_uid, run.gateway_id, run.dispatched_at) == (
        JobState.DISPATCHED,
        "edge-7",
        UID,
        "gw-1",
        NOW,
    )
    assert (run.attempt, run.lease_expires_at) == (1, NOW + timedelta(seconds=LEASE))
    with pytest.raises(errors.FailedPrecondition, match="not queued"):
        rules.claim(run, collector="edge-8", instance_uid="other", gateway_id="gw-2", now=NOW, lease_seconds=LEASE)
    again = rules.claim(
        replace(queued(), attempt=2), collector="edge-8", instance_uid="u8", gateway_id="gw-2", now=NOW, lease_seconds=5
    )
    assert (again.attempt, again.lease_expires_at) == (3, NOW + timedelta(seconds=5))


def test_every_update_from_the_holder_renews_the_lease_and_a_final_one_ends_it() -> None:
    later = NOW + timedelta(seconds=60)
    progressed = rules.apply_update(running(), JobUpdate("jr_1", JobState.RUNNING, 5, 256), later, lease_seconds=LEASE)
    assert progressed is not None and progressed.lease_expires_at == later + timedelta(seconds=LEASE)
    done = rules.apply_update(running(), JobUpdate("jr_1", JobState.SUCCEEDED), later, lease_seconds=LEASE)
    assert done is not None and (done.state, done.lease_expires_at) == (JobState.SUCCEEDED, None)
    cancelled = rules.cancel(running(), actor="alice", reason="", now=later)
    assert cancelled.lease_expires_at is None
    timed_out = rules.time_out(running(), later)
    assert timed_out.lease_expires_at is None


@pytest.mark.parametrize("attempt", [0, 2])
def test_an_update_about_the_current_attempt_or_from_an_old_collector_is_accepted(attempt: int) -> None:
    run = replace(running(), attempt=2)
    rules.check_attempt(run, JobUpdate("jr_1", JobState.RUNNING, attempt=attempt))


def test_an_update_about_a_superseded_attempt_is_refused() -> None:
    run = replace(running(), attempt=2)
    with pytest.raises(errors.FailedPrecondition, match="job run jr_1 attempt 1 was superseded by attempt 2"):
        rules.check_attempt(run, JobUpdate("jr_1", JobState.SUCCEEDED, attempt=1))
    with pytest.raises(errors.FailedPrecondition, match="attempt 3 was never handed out"):
        rules.check_attempt(run, JobUpdate("jr_1", JobState.RUNNING, attempt=3))


def test_the_first_running_update_starts_the_deadline_clock() -> None:
    run = running()
    assert (run.state, run.started_at, run.deadline_at, run.targets_total) == (
        JobState.RUNNING,
        NOW,
        NOW + timedelta(seconds=600),
        256,
    )
    later = NOW + timedelta(seconds=30)
    update = JobUpdate("jr_1", JobState.RUNNING, 10, 256, 3, batches_sent=1)
    progressed = rules.apply_update(run, update, later, lease_seconds=LEASE)
    assert progressed is not None
    assert (progressed.started_at, progressed.targets_done, progressed.devices_found) == (NOW, 10, 3)


@pytest.mark.parametrize("final", [JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED])
@pytest.mark.parametrize("start", ["dispatched", "running"])
def test_a_run_may_finish_from_dispatched_or_running(final: JobState, start: str) -> None:
    run = dispatched() if start == "dispatched" else running()
    later = NOW + timedelta(minutes=5)
    update = JobUpdate("jr_1", final, 256, 256, 9, error="boom", batches_sent=4)
    done = rules.apply_update(run, update, later, lease_seconds=LEASE)
    assert done is not None
    assert (done.state, done.finished_at, done.batches_sent, done.devices_found) == (final, later, 4, 9)
    assert done.reason == "boom"
    if final is JobState.CANCELLED:
        assert done.cancelled_by == "edge-7"


@pytest.mark.parametrize("state", [None, JobState.QUEUED, JobState.DISPATCHED])
def test_a_collector_cannot_report_queued_dispatched_or_nothing(state: JobState | None) -> None:
    with pytest.raises(errors.InvalidArgument, match="reports running or a final state"):
        rules.apply_update(dispatched(), JobUpdate("jr_1", state), NOW, lease_seconds=LEASE)


@pytest.mark.parametrize("final", [JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED])
def test_updates_for_a_final_run_are_ignored_so_nothing_is_resurrected(final: JobState) -> None:
    run = replace(running(), state=final)
    assert rules.apply_update(run, JobUpdate("jr_1", JobState.RUNNING), NOW, lease_seconds=LEASE) is None
    assert rules.apply_update(run, JobUpdate("jr_1", JobState.SUCCEEDED), NOW, lease_seconds=LEASE) is None


def test_only_the_collector_holding_a_run_may_report_on_it() -> None:
    rules.check_reporter(dispatched(), UID)
    with pytest.raises(errors.FailedPrecondition, match="dispatched to collector 'edge-7'"):
        rules.check_reporter(dispatched(), "someone-else")
    with pytest.raises(errors.FailedPrecondition, match="it is queued"):
        rules.check_reporter(queued(), UID)
    cancelled_while_queued = rules.cancel(queued(), actor="alice", reason="", now=NOW)
    rules.check_reporter(cancelled_while_queued, UID)  # the answer then says "cancelled"


@pytest.mark.parametrize("make", [queued, dispatched, running])
def test_an_admin_may_cancel_until_the_run_is_final(make: Callable[[], JobRun]) -> None:
    run = make()
    cancelled = rules.cancel(run, actor=" alice ", reason="", now=NOW)
    assert (cancelled.state, cancelled.cancelled_by, cancelled.reason) == (
        JobState.CANCELLED,
        "alice",
        "cancelled by alice",
    )
    assert cancelled.collector_instance_uid == run.collector_instance_uid  # its gateway must stop it
    with pytest.raises(errors.FailedPrecondition, match="already finished"):
        rules.cancel(cancelled, actor="bob", reason="again", now=NOW)


def test_a_running_run_times_out_after_its_deadline_and_the_grace() -> None:
    started = running()
    assert not rules.deadline_passed(started, NOW + timedelta(seconds=660))
    assert rules.deadline_passed(started, NOW + timedelta(seconds=661))
    assert not rules.deadline_passed(dispatched(), NOW + timedelta(days=1))
    timed_out = rules.time_out(started, NOW + timedelta(seconds=661))
    assert timed_out.state is JobState.TIMED_OUT
    assert "deadline (600 s)" in timed_out.reason


def test_job_run_ids_are_ulids_that_sort_by_creation_time() -> None:
    rng = random.Random(3)
    ids = [rules.new_job_run_id(NOW + timedelta(milliseconds=i), rng.getrandbits) for i in range(0, 5000, 7)]
    assert all(len(i) == 29 and i.startswith("jr_") for i in ids)
    assert all(set(i[3:]) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_made_in_one_millisecond_still_sort_in_creation_order() -> None:
    ids = rules.MonotonicRunIds(random.Random(5).getrandbits)
    made = [ids(NOW) for _ in range(50)] + [ids(NOW - timedelta(seconds=1))] + [ids(NOW + timedelta(seconds=1))]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
