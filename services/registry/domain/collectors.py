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

MAX_NAME_CHARS = 256
"""A collector's name is kept in a 256-character column (hello fields are bounded alike)."""
ONLINE_HEARTBEATS = 2
"""A collector is online only if it was heard from within this many heartbeat intervals.

Gateways report every live session every half interval with the time they last heard
from it (ADR 0010), so a healthy collector is never older than about one interval. A
gateway killed with -9 never reports the disconnect, and a cut link stops the messages:
this window is what turns such collectors offline, without waiting for a TCP timeout.

A polling collector is heard from once per check-in, not every heartbeat: its window is
its check-in interval plus this same grace (`online_window`).
"""

MAX_CHECK_IN_SECONDS = 1440 * 60
"""The longest check-in interval a gateway may report: the scheduler's upper bound of
`collector_check_minutes` (1440). A longer one is refused, never stored."""


class CollectorState(enum.StrEnum):
    PENDING = "pending"
    ENABLED = "enabled"
    DISABLED = "disabled"


class EventKind(enum.StrEnum):
    STATE_CHANGED = "state_changed"
    REMOVED = "removed"
    CREDENTIALS_CHANGED = "credentials"
    """Its identity key or service password changed (ADR 0034); the state did not."""
    BOOKMARK = "bookmark"
    """Never stored: a watch marker carrying the newest revision the watcher has seen."""


@dataclass(frozen=True)
class SpoolStatus:
    """The collector's durable result spool as it last reported it (agent SpoolStatus).

    Drop counters count since the spool was created and never go down.
    """

    batches: int = 0
    bytes: int = 0
    max_bytes: int = 0
    max_age_seconds: int = 0
    oldest_at: datetime | None = None
    dropped_full: int = 0
    dropped_expired: int = 0
    dropped_corrupt: int = 0
    dropped_devices: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_expired + self.dropped_corrupt


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
    access_key_id: str = ""
    """The access key whose sealed handshake admitted it last (empty: from before sealing)."""
    gateway_id: str = ""
    session_id: str = ""
    connected: bool = False
    registered_at: datetime | None = None
    revision: int = 0
    last_error: str = ""
    last_error_at: datetime | None = None
    encryption_public_key: bytes = b""
    """Raw X25519 key credentials are sealed to; empty until a collector announces one."""
    sealing_algorithms: tuple[str, ...] = ()
    """What its last accepted hello said it opens (ADR 0020); empty: only the legacy algorithm."""
    state_changed_at: datetime | None = None
    """When `state` last changed (registration, enable, disable); None for rows older than 0003
    whose change-log entry was missing."""
    reported_at: datetime | None = None
    """When a gateway last listed this session as live (registry clock); see `report_sessions`."""
    clock_skew_ms: int | None = None
    """Collector clock minus gateway clock at its last message; None until a gateway measures it."""
    spool: SpoolStatus | None = None
    """None until the collector reports one (versions before ADR 0010 do not)."""
    check_in_seconds: int = 0
    """A polling collector's wait between check-ins as its gateway last reported it; 0 for
    a streaming session (and until the first report of a new session)."""
    enrolled_by: str = ""
    """The enrollment token that registered it ("enrollment-token:<name>", ADR 0022); empty when
    an admin did."""
    key_rotated_at: datetime | None = None
    """When the collector last replaced its identity key (ADR 0024); None: never."""
    password_rotated_at: datetime | None = None
    """When `set-password` last replaced its service password (ADR 0025); None: never."""
    password_last_proved: str = ""
    """Which credential its last accepted handshake proved: "current", "previous", "" (none since the last change)."""
    password_on_record: bool = False
    """Never stored: whether a service-password credential is on record (set by `Registry` for people)."""
    previous_password_until: datetime | None = None
    """Never stored: until when the previous password is still accepted (None: none is)."""
    online: bool = False
    """Never stored: `is_online` at the time of reading, set by `Registry` for people."""


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
    zone: str = ""
    """The registered zone, so gateways route by the admin's decision."""


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
    """What a gateway says about one collector session it holds (or held).

    `last_heard_at` is None from gateways that predate ADR 0010: such a report means "held
    now", and carries no clock skew or spool (see `heard_at`).
    """

    instance_uid: str
    session_id: str
    connected: bool
    remote_address: str = ""
    transport: str = ""
    last_error: str = ""
    last_heard_at: datetime | None = None
    clock_skew_ms: int | None = None
    spool: SpoolStatus | None = None
    check_in_seconds: int = 0
    """A polling session's wait between polls; 0 for a streaming session."""


@dataclass(frozen=True)
class StateChange:
    """A decided change: write it and append its event in one transaction."""

    state: CollectorState
    reason: str
    changed_by: str


def is_online(collector: Collector, now: datetime, heartbeat_interval_seconds: int) -> bool:
    """Online: the gateway says the session is up *and* it was heard from recently.

    `connected` alone is what a gateway last reported, and stays true forever when that
    gateway dies without reporting; `last_seen` (the last message of any kind) is what
    ages. The rule is `connected and now - last_seen <= online_window(...)`: two
    heartbeat intervals for a streaming collector, its check-in interval plus two
    heartbeat intervals for a polling one.
    """
    window = online_window(heartbeat_interval_seconds, collector.check_in_seconds)
    return collector.connected and now - collector.last_seen <= window


def online_window(heartbeat_interval_seconds: int, check_in_seconds: int = 0) -> timedelta:
    """How long a connected collector may be silent and still be online.

    A streaming collector sends a heartbeat every interval: ONLINE_HEARTBEATS intervals
    leave room for one lost or late one and the gateway's half-interval report. A polling
    collector (`check_in_seconds` > 0) is silent for its whole check-in interval by
    design, and then needs the same grace (the poll's own latency, the report's delay):
    a collector polling every 5 minutes under a 30 s heartbeat is online for 6 minutes
    after each check-in.
    """
    return timedelta(seconds=max(0, check_in_seconds) + ONLINE_HEARTBEATS * heartbeat_interval_seconds)


def heard_at(report: SessionReport, now: datetime) -> datetime:
    """When the gateway last heard from the collector, as the registry will store it.

    A report without `last_heard_at` (an older gateway) means "held now". A time ahead of
    the registry's clock is capped at `now`: a gateway whose clock runs fast must not keep
    a collector online for longer than the window after the gateway is gone.
    """
    if report.last_heard_at is None:
        return now
    return min(report.last_heard_at, now)


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
        f"no collector named {errors.brief(name)}; `outpostctl collectors list --state pending` shows those waiting"
    )


def require_name(name: str) -> str:
    """A name as an admin typed it; longer than any collector may have is refused unquoted."""
    name = name.strip()
    if not name:
        raise errors.InvalidArgument("a collector name is required")
    if len(name) > MAX_NAME_CHARS:
        raise errors.InvalidArgument(
            f"collector name {errors.brief(name)} is longer than {MAX_NAME_CHARS} characters; no collector has it"
        )
    return name


def check_fingerprint(collector: Collector, expected: str) -> None:
    """An admin who names the key they checked (`--fingerprint`) registers that key or nothing.

    Empty `expected`: no check (the admin did not give one). Base64 padding is ignored.
    """
    if not expected:
        return
    if expected.strip().rstrip("=") != collector.fingerprint.rstrip("="):
        raise errors.FailedPrecondition(
            f"collector '{collector.name}' has key {collector.fingerprint}, not {expected.strip()}; it stays "
            "pending: compare with the fingerprint in the collector's log (collector_started) or status file"
        )
