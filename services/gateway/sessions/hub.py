"""Which collector sessions this gateway replica holds, and the newest admin decision for each.

The registry's watch delivers state changes for every collector; the hub routes each to
the live session of that collector, if this replica holds one. It also remembers the newest
change per collector, because a change can arrive between the registry's handshake
decision and the session attaching here: `attach` hands that change back so the session
applies it instead of missing it (revisions tell which is newer).

A collector has at most one live session: a second one for the same identity supersedes
the first (the collector reconnected before the old connection timed out).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from outpost.session.server import ServerState


class ChangeKind(enum.Enum):
    STATE_CHANGED = "state_changed"
    REMOVED = "removed"


@dataclass(frozen=True)
class CollectorChange:
    revision: int
    kind: ChangeKind
    instance_uid: str
    name: str
    state: ServerState
    reason: str
    changed_by: str
    zone: str = ""
    """The registered zone (a hello's zone is never used for routing)."""


@dataclass(frozen=True)
class Superseded:
    """Told to a session when the same collector opened a newer one."""

    by_session_id: str


@dataclass(frozen=True)
class RunsAvailable:
    """Told to an enabled session when the scheduler queued work it may claim."""


@dataclass(frozen=True)
class RunCancelled:
    job_run_id: str
    reason: str


@dataclass(frozen=True)
class CheckIntervalChanged:
    collector_check_minutes: int


@dataclass(frozen=True)
class SpoolStatus:
    """The collector's durable spool as its last Hello or Heartbeat described it (ADR 0010)."""

    batches: int = 0
    bytes: int = 0
    max_bytes: int = 0
    max_age_seconds: int = 0
    oldest_unix_ms: int = 0
    dropped_full: int = 0
    dropped_expired: int = 0
    dropped_corrupt: int = 0
    dropped_devices: int = 0


@dataclass
class LiveSession:
    """A collector session this replica holds, and what the collector last told about itself.

    `last_message_at` (wall clock) is when any frame last arrived; `clock_skew_ms` is the
    collector's clock minus ours at that frame; `running_job_run_ids` are the runs its last
    heartbeat listed, whose leases this gateway renews.
    """

    session_id: str
    instance_uid: str
    name: str
    zone: str
    transport: str
    remote_address: str
    opened_at: float
    deliver: Callable[[object], None]
    state: ServerState = ServerState.PENDING
    last_message_at: float = 0.0
    clock_skew_ms: int = 0
    spool: SpoolStatus | None = None
    running_job_run_ids: frozenset[str] = frozenset()
    check_in_seconds: int = 0
    """A polling session: the wait between polls its collector was last told; 0 for a
    streaming session (heard every heartbeat interval). Reported to the registry, whose
    online rule follows it."""
    # Runs whose final update this session forwarded: a heartbeat may still list them
    # until the collector knows the update arrived; their leases are not renewed.
    finished_job_run_ids: frozenset[str] = frozenset()


@dataclass
class SessionHub:
    _by_uid: dict[str, LiveSession] = field(default_factory=dict)
    _latest: dict[str, CollectorChange] = field(default_factory=dict)

    def attach(self, session: LiveSession) -> CollectorChange | None:
        """Register `session` as its collector's live one; return the newest known change."""
        previous = self._by_uid.get(session.instance_uid)
        self._by_uid[session.instance_uid] = session
        if previous is not None and previous.session_id != session.session_id:
            previous.deliver(Superseded(session.session_id))
        return self._latest.get(session.instance_uid)

    def detach(self, session_id: str, instance_uid: str) -> None:
        current = self._by_uid.get(instance_uid)
        if current is not None and current.session_id == session_id:
            del self._by_uid[instance_uid]

    def apply(self, change: CollectorChange) -> None:
        """Route a registry change to the live session, if any, and remember it."""
        known = self._latest.get(change.instance_uid)
        if known is not None and known.revision >= change.revision:
            return
        self._latest[change.instance_uid] = change
        session = self._by_uid.get(change.instance_uid)
        if session is not None:
            session.deliver(change)

    def find(self, *, name: str = "", zone: str = "", instance_uid: str = "") -> list[LiveSession]:
        """Live sessions of the collector named `name`, of every collector in `zone`, or
        of the collector `instance_uid` (whichever is given)."""
        if instance_uid:
            session = self._by_uid.get(instance_uid)
            return [session] if session is not None else []
        return [s for s in self._by_uid.values() if (name and s.name == name) or (zone and s.zone == zone)]

    def sessions(self) -> list[LiveSession]:
        return list(self._by_uid.values())

    def __len__(self) -> int:
        return len(self._by_uid)
