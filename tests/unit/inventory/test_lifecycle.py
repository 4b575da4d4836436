"""The lifecycle rules: missed-run counting, the retirement rule, un-retiring, run coverage."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.gateway.inventory.domain.device import Change, DeviceRecord, Sighting
from services.gateway.inventory.domain.lifecycle import (
    MissedRuns,
    RetirementRule,
    after_run,
    reported_device_ids,
    unretire_seen,
)
from services.gateway.inventory.domain.observation import DeviceObservation
from services.gateway.inventory.domain.run_targets import run_coverage

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


def device(device_id: str = "d1", *, retired: bool = False, reason: str = "") -> DeviceRecord:
    return DeviceRecord(
        id=device_id,
        zone="lab",
        ip="10.0.0.1",
        hostname="h",
        mac_addresses=(),
        snmp_engine_id="",
        facts={},
        ports={},
        first_seen=NOW,
        last_seen=NOW,
        last_collector="edge-1",
        last_job_run_id="r1",
        retired_at=NOW if retired else None,
        retired_reason=reason,
    )


def test_a_run_counts_a_miss_once_however_often_its_end_is_reported() -> None:
    first = after_run(None, "r1")
    assert first == MissedRuns(1, "r1")
    assert after_run(first, "r1") is None
    assert after_run(first, "r2") == MissedRuns(2, "r2")


def test_a_run_that_reported_the_device_leaves_its_reset_counter_alone() -> None:
    assert after_run(MissedRuns(0, "r3"), "r3") is None


@pytest.mark.parametrize(
    ("rule", "missed", "days_ago", "reason"),
    [
        (RetirementRule(missed_runs=3, days=0), 2, 100, None),
        (RetirementRule(missed_runs=3, days=0), 3, 0, "missed 3 runs"),
        (RetirementRule(missed_runs=3, days=0), 7, 0, "missed 7 runs"),
        (RetirementRule(missed_runs=0, days=30), 99, 29, None),
        (RetirementRule(missed_runs=0, days=30), 0, 30, "not seen for 30 days"),
        (RetirementRule(missed_runs=5, days=30), 1, 31, "not seen for 30 days"),
        (RetirementRule(missed_runs=0, days=0), 1000, 1000, None),
    ],
)
def test_the_retirement_rule_is_n_runs_or_d_days_and_0_turns_a_part_off(
    rule: RetirementRule, missed: int, days_ago: int, reason: str | None
) -> None:
    assert rule.reason(missed_runs=missed, last_seen=NOW - timedelta(days=days_ago), now=NOW) == reason


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="0 \\(off\\) or more"):
        RetirementRule(missed_runs=-1)


def test_a_retired_device_seen_again_is_active_and_the_history_says_so() -> None:
    sighting = Sighting("lab", "edge-1", "r9", NOW)
    devices, changes = unretire_seen([device("d1", retired=True, reason="missed 3 runs"), device("d2")], sighting)
    assert [(d.id, d.retired_at, d.retired_reason) for d in devices] == [("d1", None, ""), ("d2", None, "")]
    assert changes == [Change("d1", "retired", "missed 3 runs", "", NOW, "r9")]


def test_run_coverage_is_the_targets_minus_the_exclusions() -> None:
    coverage = run_coverage(["10.0.0.0/29", "10.0.1.5-7"], ["10.0.0.4"])
    assert coverage is not None
    assert [ip in coverage for ip in ("10.0.0.3", "10.0.0.4", "10.0.1.6", "10.0.1.8", "::1")] == [
        True,
        False,
        True,
        False,
        False,
    ]


def test_host_name_targets_cover_nothing_and_a_host_name_exclusion_makes_coverage_unknown() -> None:
    coverage = run_coverage(["web.example", "10.0.0.1"], [])
    assert coverage is not None and "10.0.0.1" in coverage and "10.0.0.2" not in coverage
    assert run_coverage(["10.0.0.0/24"], ["db.example"]) is None
    assert run_coverage(["not a target!"], []) is None


def test_a_device_whose_observation_was_stale_still_answered_so_it_missed_nothing() -> None:
    elsewhere = replace(device("d3"), ip="10.0.0.9")
    ids = reported_device_ids([device("d1"), elsewhere], [DeviceObservation(ip="10.0.0.1")], [device("d4")])
    assert ids == ["d4", "d1"]
