"""Where a discovery runs, checked against the registry's collectors: at create, and while a run waits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.scheduler.domain import dispatch
from services.scheduler.domain import job_runs as rules
from services.scheduler.domain.discoveries import Discovery
from services.scheduler.domain.job_runs import Trigger
from services.scheduler.domain.waiting import (
    CollectorInfo,
    CollectorState,
    WaitingCause,
    placement_problem,
    waiting_reason,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
COLLECTORS = [
    CollectorInfo("edge-1", "lab", CollectorState.ENABLED, online=True, last_seen=NOW),
    CollectorInfo("edge-2", "lab", CollectorState.ENABLED, online=False, last_seen=NOW - timedelta(minutes=42)),
    CollectorInfo("edge-3", "cold", CollectorState.DISABLED, online=True, last_seen=NOW),
    CollectorInfo("edge-4", "dark", CollectorState.ENABLED, online=False, last_seen=None),
    CollectorInfo("edge-5", "new", CollectorState.PENDING, online=True, last_seen=NOW),
]


@pytest.mark.parametrize(
    ("collector", "zone", "refused"),
    [
        ("edge-1", "", None),
        ("edge-5", "", None),  # pending: known, it waits for registration
        ("egde-1", "", "no collector named 'egde-1' is registered"),
        ("", "lab", None),
        ("", "cold", None),
        ("", "new", "no registered collector is in zone 'new'"),  # only a pending collector claims it
        ("", "labb", "no registered collector is in zone 'labb'"),
    ],
)
def test_a_discovery_must_run_somewhere_the_registry_knows(collector: str, zone: str, refused: str | None) -> None:
    problem = placement_problem(collector, zone, COLLECTORS)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(refused) and "--allow-unknown" in problem


@pytest.mark.parametrize(
    ("collector", "zone", "active", "cause", "text"),
    [
        ("nosuch", "", {}, WaitingCause.UNKNOWN_COLLECTOR, "no collector named 'nosuch' is registered"),
        (
            "edge-5",
            "",
            {},
            WaitingCause.PENDING,
            "collector 'edge-5' is pending: `outpostctl collectors register edge-5`",
        ),
        ("edge-3", "", {}, WaitingCause.DISABLED, "collector 'edge-3' is disabled"),
        (
            "edge-2",
            "",
            {},
            WaitingCause.OFFLINE,
            "collector 'edge-2' is offline (last heard 42m ago, at 2025-06-01 11:18 UTC)",
        ),
        ("edge-4", "", {}, WaitingCause.OFFLINE, "collector 'edge-4' is offline (last heard never)"),
        ("edge-1", "", {"edge-1": 1}, WaitingCause.BUSY, "collector 'edge-1' is running another run"),
        ("edge-1", "", {}, WaitingCause.NONE, ""),
        ("", "nowhere", {}, WaitingCause.UNKNOWN_ZONE, "no registered collector is in zone 'nowhere'"),
        ("", "cold", {}, WaitingCause.ZONE_DISABLED, "no enabled collector in zone 'cold' (edge-3 disabled)"),
        ("", "dark", {}, WaitingCause.ZONE_OFFLINE, "no collector of zone 'dark' is online (last heard never)"),
        ("", "lab", {"edge-1": 1}, WaitingCause.BUSY, "every online collector of zone 'lab' is running another run"),
        ("", "lab", {}, WaitingCause.NONE, ""),
    ],
)
def test_a_queued_run_says_why_it_waits(
    collector: str, zone: str, active: dict[str, int], cause: WaitingCause, text: str
) -> None:
    reason = waiting_reason(collector, zone, COLLECTORS, active, NOW)
    assert (reason.cause, reason.text) == (cause, text)


def test_a_run_missed_while_its_collector_was_disabled_says_disabled_not_offline() -> None:
    discovery = Discovery(name="d", targets=("10.0.0.1",), collector="edge-3", created_at=NOW)
    run = rules.new_run(discovery, trigger=Trigger.SCHEDULE, due_at=NOW, now=NOW, schedule="s")
    assert dispatch.missed_reason(run) == dispatch.MISSED_WHILE_OFFLINE
    disabled = waiting_reason("edge-3", "", COLLECTORS, {}, NOW)
    held = replace(run, waiting_reason=disabled.text, waiting_cause=disabled.cause.value)
    assert dispatch.missed_reason(held) == "missed: collector was disabled when it fell due"
