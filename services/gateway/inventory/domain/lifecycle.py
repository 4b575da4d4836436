"""Device lifecycle: missed runs per discovery, the retirement rule, and un-retiring.

A discovery's run that ends successfully has looked at every address of its targets. Each
device of the zone at one of those addresses that the run did not report has *missed* that
run: its counter for the discovery goes up by one. A device the run reported is reset to 0
(when its batch is committed). Nothing else about a missed device changes: a host that did
not answer keeps its ports, host name and facts (docs/inventory.md, "Lifecycle").

The device's `missed_runs` is the smallest of its counters: a device one discovery still
sees (a TCP scan) is not missing because another cannot (an ICMP sweep of a host that
drops pings). A discovery whose targets no longer cover the device drops its counter.

The retirement rule ("not seen for N runs or D days", `RetirementRule`) is applied when a
run of the zone ends: a device it matches is retired (history "retired": "" -> the rule,
e.g. "missed 3 runs"), hidden from `devices list` unless asked for, its history kept. A
later sighting un-retires it (history "retired": the rule -> "").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.gateway.inventory.domain.device import Change, DeviceRecord, Sighting
from services.gateway.inventory.domain.observation import DeviceObservation

RETIRED = "retired"
"""The history field of retiring ("" -> reason) and un-retiring (reason -> "")."""
DEFAULT_RETIRE_AFTER_MISSED_RUNS = 5
DEFAULT_RETIRE_AFTER_DAYS = 0


@dataclass(frozen=True)
class RetirementRule:
    """Retire a device not seen for `missed_runs` runs or `days` days; 0 turns a part off."""

    missed_runs: int = DEFAULT_RETIRE_AFTER_MISSED_RUNS
    days: int = DEFAULT_RETIRE_AFTER_DAYS

    def __post_init__(self) -> None:
        if self.missed_runs < 0 or self.days < 0:
            raise ValueError("retirement thresholds must be 0 (off) or more")

    def reason(self, *, missed_runs: int, last_seen: datetime, now: datetime) -> str | None:
        """Why an active device is to be retired now, or None."""
        if self.missed_runs and missed_runs >= self.missed_runs:
            return f"missed {missed_runs} runs"
        if self.days and now - last_seen >= timedelta(days=self.days):
            return f"not seen for {self.days} days"
        return None


@dataclass(frozen=True)
class MissedRuns:
    """One device's count for one discovery, and the run that last reset or counted it."""

    missed_runs: int
    last_run_id: str


def after_run(counter: MissedRuns | None, job_run_id: str) -> MissedRuns | None:
    """A covered device's counter once run `job_run_id` ended; None: unchanged.

    A counter the run already touched (it reported the device, or its end was counted
    before: a final update reported twice) stays as it is.
    """
    if counter is not None and counter.last_run_id == job_run_id:
        return None
    return MissedRuns((counter.missed_runs if counter is not None else 0) + 1, job_run_id)


def reported_device_ids(
    stored: Iterable[DeviceRecord], observations: Iterable[DeviceObservation], touched: Iterable[DeviceRecord]
) -> list[str]:
    """The devices a batch shows alive: those it wrote, and those at its IPs whose observation
    was skipped as stale (the host answered; only what it said was older than what is stored)."""
    ips = {o.ip for o in observations}
    ids = dict.fromkeys(d.id for d in touched)
    ids.update(dict.fromkeys(d.id for d in stored if d.ip in ips))
    return list(ids)


def retired_change(device_id: str, reason: str, now: datetime, job_run_id: str) -> Change:
    return Change(device_id, RETIRED, "", reason, now, job_run_id)


def unretire_seen(devices: Iterable[DeviceRecord], sighting: Sighting) -> tuple[list[DeviceRecord], list[Change]]:
    """The devices a batch reported, none retired; a change for each that was."""
    result: list[DeviceRecord] = []
    changes: list[Change] = []
    for device in devices:
        if device.retired_at is None:
            result.append(device)
            continue
        reason = device.retired_reason or "yes"
        changes.append(Change(device.id, RETIRED, reason, "", sighting.observed_at, sighting.job_run_id))
        result.append(replace(device, retired_at=None, retired_reason=""))
    return result, changes
