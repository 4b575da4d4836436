"""Collectors, their admin-controlled state, and the rules for changing it.

A collector is created `pending` when it first announces itself. Only an admin moves it
out of pending, by *registering* it (proving they know the service username and password
it was installed with); from then on it is `enabled` or `disabled`, and admins switch
between the two. Removing a collector is allowed in any state. Every change is recorded
as an event whose revision orders it globally, so watchers (gateways) can resume.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from outpost import errors

CONNECTED_HEARTBEATS = 3
"""A collector counts as connected only if it was seen within this many heartbeats.

Gateways refresh `last_seen` with their session reports; a gateway killed with -9 never
reports the disconnect, and this is what stops its collectors looking connected forever.
"""


class CollectorState(enum.StrEnum):
    PENDING = "pending"
    ENABLED = "enabled"
    DISABLED = "disabled"


class EventKind(enum.StrEnum):
    STATE_CHANGED = "state_changed"
    REMOVED = "removed"
    BOOKMARK = "bookmark"
    """Never stored: a watch marker carrying the newest revision the watcher has seen."""


@dataclass(frozen=True)
class Collector:
    """One stored collector. `password_verifier` never leaves the registry."""

    instance_uid: str
    name: str
    zone: str
    version: str
    username: str
    password_verifier: str
    public_key: bytes
    fingerprint: str
    state: CollectorState
    first_seen: datetime
    last_seen: datetime
    state_reason: str = ""
    state_changed_by: str = ""
    remote_address: str = ""
    transport: str = ""
    gateway_id: str = ""
    session_id: str = ""
    connected: bool = False
    registered_at: datetime | None = None
    revision: int = 0
    last_error: str = ""
    last_error_at: datetime | None = None
    encryption_public_key: bytes = b""
    """Raw X25519 key credentials are sealed to; empty until a collector announces one."""


@dataclass(frozen=True)
class CollectorEvent:
    """A state change or removal, in the global revision order."""

    revision: int
    kind: EventKind
    instance_uid: str = ""
    name: str = ""
    state: CollectorState | None = None
    reason: str = ""
    changed_by: str = ""


@dataclass(frozen=True)
class NameConflict:
    """A collector that asked for a name another collector already holds."""

    name: str
    instance_uid: str
    fingerprint: str
    held_by_fingerprint: str
    remote_address: str
    first_seen: datetime
    last_seen: datetime
    attempts: int


@dataclass(frozen=True)
class SessionReport:
    """What a gateway says about one collector session it holds (or held)."""

    instance_uid: str
    session_id: str
    connected: bool
    remote_address: str = ""
    transport: str = ""
    last_error: str = ""


@dataclass(frozen=True)
class StateChange:
    """A decided change: write it and append its event in one transaction."""

    state: CollectorState
    reason: str
    changed_by: str


def is_connected(collector: Collector, now: datetime, heartbeat_interval_seconds: int) -> bool:
    """Connected as people should see it: reported connected *and* seen recently."""
    window = timedelta(seconds=CONNECTED_HEARTBEATS * heartbeat_interval_seconds)
    return collector.connected and now - collector.last_seen <= window


def actor_or_default(actor: str) -> str:
    return actor.strip() or "unknown"


def plan_registration(collector: Collector, *, enable: bool, actor: str) -> StateChange:
    """Registering moves a pending collector to enabled or disabled; nothing else."""
    if collector.state is not CollectorState.PENDING:
        raise errors.FailedPrecondition(f"collector '{collector.name}' is already registered ({collector.state})")
    who = actor_or_default(actor)
    state = CollectorState.ENABLED if enable else CollectorState.DISABLED
    return StateChange(state=state, reason=f"registered by {who}", changed_by=who)


def plan_admin_change(collector: Collector, target: CollectorState, *, actor: str, reason: str) -> StateChange | None:
    """Enable or disable a registered collector; None when it is already in `target`.

    Idempotent on purpose: a script that re-runs `outpostctl collectors enable` must not
    spam watchers with events that change nothing.
    """
    if target is CollectorState.PENDING:
        raise errors.InvalidArgument("a collector cannot be moved back to pending")
    if collector.state is CollectorState.PENDING:
        raise errors.FailedPrecondition(
            f"collector '{collector.name}' is pending; register it first with `outpostctl collectors register`"
        )
    if collector.state is target:
        return None
    who = actor_or_default(actor)
    verb = "enabled" if target is CollectorState.ENABLED else "disabled"
    return StateChange(state=target, reason=reason.strip() or f"{verb} by {who}", changed_by=who)


def plan_removal(collector: Collector, *, actor: str, reason: str) -> StateChange:
    """Removal is allowed in every state; the event keeps the state it had."""
    who = actor_or_default(actor)
    return StateChange(state=collector.state, reason=reason.strip() or f"removed by {who}", changed_by=who)


def not_found(name: str) -> errors.NotFound:
    return errors.NotFound(
        f"no collector named '{name}'; `outpostctl collectors list --state pending` shows those waiting"
    )


def require_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise errors.InvalidArgument("a collector name is required")
    return name
