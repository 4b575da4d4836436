"""Route the scheduler's dispatch events to the sessions this gateway holds.

A queued run wakes every live, enabled session that may take it (the named collector,
or every collector of the zone); each asks the scheduler to claim, and the database gives
the run to exactly one. A cancelled run reaches the session of the collector running it.
A settings change reaches every session. Sessions this replica does not hold are another
replica's business: every gateway watches, and only the holder acts.

The settings are also read whole (`settings_read`) when the dispatch watch opens and after
every gap in it (`ResumableWatch`'s resync): a watch that opens at the newest revision
replays no settings event, so without that read a restarted gateway would hold the
default until the next change (issue 10, item 11).
"""

from __future__ import annotations

import structlog

from outpost.agent.v1 import agent_pb2
from outpost.session.server import ServerState
from services.gateway import metrics
from services.gateway.domain.check_interval import CheckInterval
from services.gateway.peers.scheduler_client import RunChanged, SettingsChanged
from services.gateway.sessions.hub import CheckIntervalChanged, RunCancelled, RunsAvailable, SessionHub

log = structlog.get_logger(__name__)


class Dispatcher:
    def __init__(self, hub: SessionHub, check_interval: CheckInterval | None = None) -> None:
        self._hub = hub
        self.check_interval = check_interval or CheckInterval()
        metrics.CHECK_INTERVAL_SECONDS.set(self.check_interval.seconds)
        log.info(
            "check_interval_default_in_use",
            collector_check_minutes=self.check_interval.minutes,
            until="read from the scheduler when the dispatch watch opens",
        )

    @property
    def collector_check_minutes(self) -> int:
        return self.check_interval.minutes

    def settings_read(self, collector_check_minutes: int) -> None:
        """The settings as `GetSettings` returned them (watch opened, or after a gap)."""
        first = not self.check_interval.read
        self._set(collector_check_minutes, "read")
        if first:
            log.info("check_interval_read", collector_check_minutes=self.check_interval.minutes)

    def apply(self, item: RunChanged | SettingsChanged) -> None:
        if isinstance(item, SettingsChanged):
            self._set(item.collector_check_minutes, "watch")
            return
        run = item.run
        if run.state == agent_pb2.JOB_STATE_QUEUED:
            for session in self._hub.find(name=run.target_collector, zone=run.target_zone):
                if session.state is ServerState.ENABLED:
                    session.deliver(RunsAvailable())
        elif run.state == agent_pb2.JOB_STATE_CANCELLED and run.collector_instance_uid:
            for session in self._hub.find(instance_uid=run.collector_instance_uid):
                session.deliver(RunCancelled(run.id, run.reason or "cancelled by an admin"))

    def _set(self, minutes: int, how: str) -> None:
        """Hold `minutes`; tell every session only when it is a change (no event storm)."""
        before = self.check_interval.minutes
        if not self.check_interval.update(minutes):
            return
        metrics.CHECK_INTERVAL_SECONDS.set(self.check_interval.seconds)
        log.info("check_interval_changed", collector_check_minutes=minutes, previous=before, via=how)
        for session in self._hub.sessions():
            session.deliver(CheckIntervalChanged(minutes))
