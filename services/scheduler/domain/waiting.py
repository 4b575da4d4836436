"""Where a discovery runs, checked against the registry: at create time, and while a run waits.

The scheduler does not own collectors; it asks the registry for the list
(`registry_client.py`) and decides here, with plain data:

- `placement_problem`: creating a discovery for a collector name nobody registered, or
  a zone no collector is in, is most often a typo, and its runs would wait forever.
  It is refused unless the admin says `allow_unknown` (a collector installed later).
- `waiting_reason`: why a queued run has not been taken, for `jobs list`: the collector
  is unknown, pending, disabled, offline (with when it was last heard), or busy with
  other runs; or the zone has no collector, none enabled, none online. The cause is
  kept with the run so that a run later cancelled as missed says what held it back
  ("collector was disabled", not "offline").
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from outpost import errors


class CollectorState(enum.StrEnum):
    PENDING = "pending"
    ENABLED = "enabled"
    DISABLED = "disabled"


@dataclass(frozen=True)
class CollectorInfo:
    """What the registry says of one collector (its name and zone are the admin's decision)."""

    name: str
    zone: str
    state: CollectorState
    online: bool
    last_seen: datetime | None = None


class WaitingCause(enum.StrEnum):
    NONE = ""
    UNKNOWN_COLLECTOR = "unknown_collector"
    PENDING = "pending"
    DISABLED = "disabled"
    OFFLINE = "offline"
    BUSY = "busy"
    UNKNOWN_ZONE = "unknown_zone"
    ZONE_DISABLED = "zone_disabled"
    ZONE_OFFLINE = "zone_offline"


@dataclass(frozen=True)
class WaitingReason:
    cause: WaitingCause
    text: str

    @property
    def disabled(self) -> bool:
        return self.cause in (WaitingCause.DISABLED, WaitingCause.ZONE_DISABLED)


NOTHING = WaitingReason(WaitingCause.NONE, "")


def placement_problem(collector: str, zone: str, collectors: Sequence[CollectorInfo]) -> str | None:
    """Why a discovery aimed at `collector` (or `zone`) could never run; None if it can."""
    if collector:
        if any(c.name == collector for c in collectors):
            return None
        return (
            f"no collector named {errors.brief(collector)} is registered (`outpostctl collectors list` shows "
            "them); check the name, or pass --allow-unknown for a collector that will be registered later"
        )
    if any(c.zone == zone and c.state is not CollectorState.PENDING for c in collectors):
        return None
    return (
        f"no registered collector is in zone {errors.brief(zone)} (`outpostctl collectors list` shows their "
        "zones); check the zone, or pass --allow-unknown for a zone whose collectors will be registered later"
    )


def waiting_reason(
    collector: str,
    zone: str,
    collectors: Sequence[CollectorInfo],
    active_runs: Mapping[str, int],
    now: datetime,
) -> WaitingReason:
    """Why a run queued for `collector` (or any collector of `zone`) is not taken yet.

    `active_runs` counts the runs each collector (by name) has dispatched or running: an
    enabled, online collector that holds one is busy (it runs one at a time by default).
    """
    if collector:
        found = next((c for c in collectors if c.name == collector), None)
        if found is None:
            return WaitingReason(WaitingCause.UNKNOWN_COLLECTOR, f"no collector named '{collector}' is registered")
        return _collector_reason(found, active_runs.get(found.name, 0), now)
    members = [c for c in collectors if c.zone == zone and c.state is not CollectorState.PENDING]
    if not members:
        return WaitingReason(WaitingCause.UNKNOWN_ZONE, f"no registered collector is in zone '{zone}'")
    enabled = [c for c in members if c.state is CollectorState.ENABLED]
    if not enabled:
        names = ", ".join(sorted(c.name for c in members))
        return WaitingReason(WaitingCause.ZONE_DISABLED, f"no enabled collector in zone '{zone}' ({names} disabled)")
    online = [c for c in enabled if c.online]
    if not online:
        heard = max((c.last_seen for c in enabled if c.last_seen), default=None)
        return WaitingReason(
            WaitingCause.ZONE_OFFLINE,
            f"no collector of zone '{zone}' is online (last heard {_ago(heard, now)})",
        )
    if all(active_runs.get(c.name, 0) for c in online):
        return WaitingReason(WaitingCause.BUSY, f"every online collector of zone '{zone}' is running another run")
    return NOTHING


def _collector_reason(collector: CollectorInfo, active: int, now: datetime) -> WaitingReason:
    name = collector.name
    if collector.state is CollectorState.PENDING:
        return WaitingReason(
            WaitingCause.PENDING, f"collector '{name}' is pending: `outpostctl collectors register {name}`"
        )
    if collector.state is CollectorState.DISABLED:
        return WaitingReason(WaitingCause.DISABLED, f"collector '{name}' is disabled")
    if not collector.online:
        return WaitingReason(
            WaitingCause.OFFLINE, f"collector '{name}' is offline (last heard {_ago(collector.last_seen, now)})"
        )
    if active:
        return WaitingReason(WaitingCause.BUSY, f"collector '{name}' is running another run")
    return NOTHING


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit} ago, at {when:%Y-%m-%d %H:%M} UTC"
    return f"{seconds}s ago, at {when:%Y-%m-%d %H:%M:%S} UTC"
