"""The missed-run policy and claim capacity, as pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.scheduler.domain import dispatch
from services.scheduler.domain import job_runs as rules
from services.scheduler.domain.discoveries import Discovery
from services.scheduler.domain.job_runs import JobRun, Trigger
from services.scheduler.domain.schedules import MissedRunPolicy
from services.scheduler.domain.settings import Settings

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DISCOVERY = Discovery(name="dmz-sweep", targets=("10.0.0.0/24",), collector="edge-7", created_at=NOW)
THRESHOLD = dispatch.missed_threshold(Settings(collector_check_minutes=5))


def scheduled(schedule: str, minutes_ago: int) -> JobRun:
    due = NOW - timedelta(minutes=minutes_ago)
    return rules.new_run(
        DISCOVERY,
        trigger=Trigger.SCHEDULE,
        due_at=due,
        now=due,
        schedule=schedule,
        run_id=f"jr_{schedule}_{minutes_ago}",
    )


def manual(minutes_ago: int) -> JobRun:
    at = NOW - timedelta(minutes=minutes_ago)
    return rules.new_run(DISCOVERY, trigger=Trigger.MANUAL, due_at=at, now=at, run_id=f"jr_manual_{minutes_ago}")


def plan(runs: list[JobRun], **policies: MissedRunPolicy) -> dict[str, str]:
    missed = dispatch.plan_missed_runs(runs, policies, now=NOW, threshold=THRESHOLD)
    return {m.run.id: m.reason for m in missed}


def test_the_missed_threshold_is_the_poll_interval_plus_a_minute() -> None:
    assert dispatch.missed_threshold(Settings(collector_check_minutes=5)) == timedelta(minutes=6)
    assert dispatch.missed_threshold(Settings(collector_check_minutes=1)) == timedelta(minutes=2)


def test_runs_a_polling_collector_picks_up_on_its_normal_poll_are_not_missed() -> None:
    runs = [scheduled("nightly", 6), scheduled("nightly", 1)]
    assert plan(runs, nightly=MissedRunPolicy.SKIP) == {}


def test_skip_cancels_every_missed_run_of_the_schedule() -> None:
    runs = [scheduled("nightly", 60), scheduled("nightly", 30), scheduled("nightly", 7), scheduled("nightly", 2)]
    assert plan(runs, nightly=MissedRunPolicy.SKIP) == {
        "jr_nightly_60": dispatch.MISSED_WHILE_OFFLINE,
        "jr_nightly_30": dispatch.MISSED_WHILE_OFFLINE,
        "jr_nightly_7": dispatch.MISSED_WHILE_OFFLINE,
    }


def test_a_retry_is_never_missed_however_old_its_due_minute() -> None:
    retry = replace(scheduled("nightly", 60), attempt=1)  # its lease expired; it is back in the queue
    assert plan([retry, scheduled("nightly", 30)], nightly=MissedRunPolicy.SKIP) == {
        "jr_nightly_30": dispatch.MISSED_WHILE_OFFLINE
    }
    assert plan([retry], nightly=MissedRunPolicy.RUN_ONCE) == {}


def test_run_once_keeps_the_newest_missed_run_and_cancels_the_older_ones() -> None:
    runs = [scheduled("hourly", 180), scheduled("hourly", 120), scheduled("hourly", 60)]
    assert plan(runs, hourly=MissedRunPolicy.RUN_ONCE) == {
        "jr_hourly_180": dispatch.SUPERSEDED_BY_MISSED,
        "jr_hourly_120": dispatch.SUPERSEDED_BY_MISSED,
    }


def test_run_once_with_an_on_time_run_queued_cancels_all_the_missed_ones() -> None:
    runs = [scheduled("hourly", 120), scheduled("hourly", 60), scheduled("hourly", 0)]
    assert plan(runs, hourly=MissedRunPolicy.RUN_ONCE) == {
        "jr_hourly_120": dispatch.SUPERSEDED_BY_NEWER,
        "jr_hourly_60": dispatch.SUPERSEDED_BY_NEWER,
    }


def test_manual_runs_are_never_missed() -> None:
    assert plan([manual(600), manual(60)]) == {}


def test_each_schedule_follows_its_own_policy_and_a_deleted_one_defaults_to_run_once() -> None:
    runs = [scheduled("a", 90), scheduled("a", 30), scheduled("b", 90), scheduled("b", 30), scheduled("gone", 90)]
    runs.append(scheduled("gone", 30))
    assert plan(runs, a=MissedRunPolicy.SKIP, b=MissedRunPolicy.RUN_ONCE) == {
        "jr_a_90": dispatch.MISSED_WHILE_OFFLINE,
        "jr_a_30": dispatch.MISSED_WHILE_OFFLINE,
        "jr_b_90": dispatch.SUPERSEDED_BY_MISSED,
        "jr_gone_90": dispatch.SUPERSEDED_BY_MISSED,
    }


def test_claiming_takes_the_oldest_that_fit_beside_the_active_runs() -> None:
    runs = [manual(1), scheduled("a", 3), manual(5)]
    assert [r.id for r in dispatch.runs_to_claim(runs, cancelled=set(), active=0, limit=2)] == [
        "jr_manual_5",
        "jr_a_3",
    ]
    assert dispatch.runs_to_claim(runs, cancelled=set(), active=1, limit=1) == []
    assert [r.id for r in dispatch.runs_to_claim(runs, cancelled={"jr_manual_5"}, active=1, limit=2)] == ["jr_a_3"]


def test_claim_limit_defaults_to_one_and_is_capped() -> None:
    assert dispatch.claim_limit(0) == 1
    assert dispatch.claim_limit(3) == 3
    assert dispatch.claim_limit(10_000) == dispatch.MAX_CLAIM_LIMIT
