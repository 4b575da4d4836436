"""Leases: when one has expired, what happens to its run, and why a hold was not renewed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.scheduler.domain import job_runs as rules
from services.scheduler.domain import leases
from services.scheduler.domain.discoveries import Discovery
from services.scheduler.domain.job_runs import JobRun, JobState, JobUpdate, Trigger
from services.scheduler.domain.leases import LeaseHold, LeasePolicy, LostLease

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DISCOVERY = Discovery(name="dmz-sweep", targets=("10.0.0.0/24",), zone="dmz", deadline_seconds=600, created_at=NOW)
UID = "uid-edge-7"
LEASE = 90


def queued() -> JobRun:
    return rules.new_run(DISCOVERY, trigger=Trigger.MANUAL, due_at=NOW, now=NOW, run_id="jr_1")


def dispatched(run: JobRun | None = None) -> JobRun:
    return rules.claim(
        run or queued(), collector="edge-7", instance_uid=UID, gateway_id="gw-1", now=NOW, lease_seconds=LEASE
    )


def running() -> JobRun:
    update = JobUpdate("jr_1", JobState.RUNNING, targets_done=40, targets_total=256, devices_found=3, batches_sent=2)
    run = rules.apply_update(dispatched(), update, NOW, lease_seconds=LEASE)
    assert run is not None
    return run


def test_the_default_policy_is_three_heartbeats_and_three_attempts() -> None:
    policy = LeasePolicy()
    assert (policy.seconds, policy.max_attempts) == (90, 3)
    assert policy.expires_at(NOW) == NOW + timedelta(seconds=90)


@pytest.mark.parametrize("make", [dispatched, running])
def test_a_lease_expires_at_its_time_for_dispatched_and_running_runs(make: Callable[[], JobRun]) -> None:
    run = make()
    assert not leases.lease_expired(run, NOW + timedelta(seconds=LEASE - 1))
    assert leases.lease_expired(run, NOW + timedelta(seconds=LEASE))


@pytest.mark.parametrize("state", [JobState.QUEUED, *sorted(rules.FINAL_STATES)])
def test_only_active_runs_have_leases_that_expire(state: JobState) -> None:
    run = replace(running(), state=state)
    assert not leases.lease_expired(run, NOW + timedelta(days=1))


def test_an_expired_lease_queues_the_run_again_keeping_its_attempt_and_naming_the_collector() -> None:
    later = NOW + timedelta(seconds=LEASE)
    run = leases.expire_lease(running(), later, max_attempts=3)

    assert (run.state, run.attempt, run.lease_expires_at) == (JobState.QUEUED, 1, None)
    assert (run.collector, run.collector_instance_uid, run.gateway_id) == ("", "", "")
    assert (run.dispatched_at, run.started_at, run.deadline_at, run.finished_at) == (None, None, None, None)
    assert (run.targets_done, run.targets_total, run.devices_found, run.batches_sent) == (0, 0, 0, 0)
    assert run.reason == "collector 'edge-7' stopped renewing the lease of attempt 1; queued for attempt 2 of 3"
    again = dispatched(run)
    assert (again.attempt, again.lease_expires_at) == (2, NOW + timedelta(seconds=LEASE))


def test_the_last_allowed_attempt_fails_when_its_lease_expires() -> None:
    later = NOW + timedelta(seconds=LEASE)
    third = replace(running(), attempt=3)
    failed = leases.expire_lease(third, later, max_attempts=3)

    assert (failed.state, failed.finished_at, failed.lease_expires_at, failed.attempt) == (
        JobState.FAILED,
        later,
        None,
        3,
    )
    assert failed.collector == "edge-7"  # who had it last stays on record
    assert failed.reason == (
        "collector 'edge-7' stopped renewing the lease of attempt 3; giving up after 3 attempts (--max-attempts 3)"
    )
    assert leases.expire_lease(replace(running(), attempt=5), later, max_attempts=3).state is JobState.FAILED
    assert leases.expire_lease(running(), later, max_attempts=1).state is JobState.FAILED


HOLD = LeaseHold("jr_1", UID)


def test_a_hold_on_an_unknown_or_finished_run_is_lost_with_the_reason() -> None:
    assert leases.lost_lease(HOLD, None) == LostLease("jr_1", UID, "no job run with id 'jr_1'")
    cancelled = rules.cancel(running(), actor="alice", reason="wrong subnet", now=NOW)
    assert leases.lost_lease(HOLD, cancelled) == LostLease(
        "jr_1", UID, "job run jr_1 already finished (cancelled): wrong subnet"
    )


def test_a_hold_on_a_run_queued_again_or_held_by_another_collector_is_lost() -> None:
    requeued = leases.expire_lease(running(), NOW + timedelta(seconds=LEASE), max_attempts=3)
    lost = leases.lost_lease(HOLD, requeued)
    assert lost is not None
    assert lost.reason == (
        "job run jr_1 is queued again: collector 'edge-7' stopped renewing the lease of attempt 1; "
        "queued for attempt 2 of 3"
    )
    elsewhere = rules.claim(
        requeued, collector="edge-8", instance_uid="uid-edge-8", gateway_id="gw-2", now=NOW, lease_seconds=LEASE
    )
    assert leases.lost_lease(HOLD, elsewhere) == LostLease(
        "jr_1", UID, "job run jr_1 is attempt 2 on collector 'edge-8' (uid-edge-8)"
    )


def test_a_hold_on_a_run_never_handed_out_is_lost() -> None:
    assert leases.lost_lease(HOLD, queued()) == LostLease("jr_1", UID, "job run jr_1 is queued")


def test_a_hold_the_same_instance_holds_again_is_not_lost() -> None:
    assert leases.lost_lease(HOLD, running()) is None
