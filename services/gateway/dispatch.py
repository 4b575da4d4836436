"""Route the scheduler's dispatch events to the sessions this gateway holds.

A queued run wakes every live, enabled session that may take it (the named collector,
or every collector of the zone); each asks the scheduler to claim, and the database gives
the run to exactly one. A cancelled run reaches the session of the collector running it.
A settings change reaches every session. Sessions this replica does not hold are another
replica's business: every gateway watches, and only the holder acts.
"""

from __future__ import annotations

from outpost.agent.v1 import agent_pb2
from outpost.session.server import ServerState
from services.gateway.domain.session_hub import CheckIntervalChanged, RunCancelled, RunsAvailable, SessionHub
from services.gateway.scheduler_client import RunChanged, SettingsChanged


class Dispatcher:
    def __init__(self, hub: SessionHub) -> None:
        self._hub = hub
        self.collector_check_minutes = 5

    def apply(self, item: RunChanged | SettingsChanged) -> None:
        if isinstance(item, SettingsChanged):
            self.collector_check_minutes = item.collector_check_minutes
            for session in self._hub.sessions():
                session.deliver(CheckIntervalChanged(item.collector_check_minutes))
            return
        run = item.run
        if run.state == agent_pb2.JOB_STATE_QUEUED:
            for session in self._hub.find(name=run.target_collector, zone=run.target_zone):
                if session.state is ServerState.ENABLED:
                    session.deliver(RunsAvailable())
        elif run.state == agent_pb2.JOB_STATE_CANCELLED and run.collector_instance_uid:
            for session in self._hub.find(instance_uid=run.collector_instance_uid):
                session.deliver(RunCancelled(run.id, run.reason or "cancelled by an admin"))
