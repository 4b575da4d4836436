"""The scheduler's admin calls as plain records: discoveries, schedules, job runs, settings.

Protobuf stays in this module. Enum values become the words an operator types and reads:
job states are lowercase (`queued`, ..., `timed_out`), missed-run policies are `skip` and
`run-once`; a value this client does not know yet shows as its number. Timestamps are
UTC datetimes, or None when the server never set them.

Its standard gRPC health status (`server info`): behind a single ingress (`--server`) the
health service is shared by every backend, so that answer comes from whichever service
the ingress routes `grpc.health.v1.Health` to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from grpc_health.v1 import health_pb2, health_pb2_grpc

from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from outpostctl.endpoints import Connection, Endpoints, time_field

JOB_STATES = ("queued", "dispatched", "running", "succeeded", "failed", "timed_out", "cancelled")
TERMINAL_STATES = frozenset({"succeeded", "failed", "timed_out", "cancelled"})
MISSED_RUN_POLICIES = ("skip", "run-once")

_JOB_STATE_PREFIX = "JOB_STATE_"
_MISSED_PREFIX = "MISSED_RUN_POLICY_"


@dataclass(frozen=True)
class Discovery:
    """What to scan, how, and where (field order is the JSON order).

    Exactly one of `collector` and `zone` is set. Zero limits mean the server's defaults;
    zero probe ports (`snmp_port`, `ssh_port`) mean the standard 161 and 22.
    """

    name: str
    targets: list[str]
    exclusions: list[str]
    ports: list[int]
    probes: list[str]
    snmp_credential: str = ""
    ssh_credential: str = ""
    collector: str = ""
    zone: str = ""
    concurrency: int = 0
    rate_per_second: int = 0
    timeout_ms: int = 0
    deadline_seconds: int = 0
    dns_resolver: str = ""
    snmp_port: int = 0
    ssh_port: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class Schedule:
    """When a discovery runs: five cron fields read in `timezone`."""

    name: str
    discovery: str
    minute: str
    hour: str
    day_of_month: str
    month: str
    day_of_week: str
    timezone: str
    enabled: bool
    missed_run_policy: str  # "skip", "run-once", or "" when the server did not say
    next_due_at: datetime | None = None
    last_due_at: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class JobRun:
    """One run of a discovery (field order is the JSON order; the first fields are promised)."""

    id: str
    discovery: str
    schedule: str
    trigger: str
    state: str
    collector: str
    targets_done: int
    targets_total: int
    devices_found: int
    reason: str
    due_at: datetime | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    dispatched_at: datetime | None
    target_collector: str
    target_zone: str
    gateway_id: str
    collector_instance_uid: str
    batches_sent: int
    cancelled_by: str
    attempt: int = 0
    lease_expires_at: datetime | None = None
    observations_stale: int = 0
    """Observations the inventory skipped as older than what another run had recorded."""
    waiting_reason: str = ""
    """While queued: why no collector has taken it (empty: nothing known holds it back)."""


@dataclass(frozen=True)
class JobRunDetail:
    """A run and the discovery as it was when the run was created."""

    run: JobRun
    discovery_snapshot: Discovery | None


@dataclass(frozen=True)
class Settings:
    # How often HTTP-polling collectors check in.
    collector_check_minutes: int


class SchedulerClient(Connection):
    service = "scheduler"

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints.scheduler, endpoints)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self._stub = scheduler_pb2_grpc.SchedulerServiceStub(self.channel)

    def health(self) -> str:
        """The server's overall status: SERVING, NOT_SERVING, ..."""
        reply = self.call(self._health.Check, health_pb2.HealthCheckRequest(service=""))
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    # --- discoveries ----------------------------------------------------------------------

    def create_discovery(self, discovery: Discovery, *, allow_unknown: bool = False) -> Discovery:
        request = scheduler_pb2.CreateDiscoveryRequest(
            discovery=_discovery_message(discovery), allow_unknown=allow_unknown
        )
        return _discovery(self.call(self._stub.CreateDiscovery, request).discovery)

    def discoveries_page(self, page_size: int, page_token: str) -> tuple[list[Discovery], str]:
        """One page of discoveries by name and the next page's token ("" at the end)."""
        request = scheduler_pb2.ListDiscoveriesRequest(page_size=page_size, page_token=page_token)
        reply = self.call(self._stub.ListDiscoveries, request)
        return [_discovery(d) for d in reply.discoveries], reply.next_page_token

    def get_discovery(self, name: str) -> Discovery:
        reply = self.call(self._stub.GetDiscovery, scheduler_pb2.GetDiscoveryRequest(name=name))
        return _discovery(reply.discovery)

    def delete_discovery(self, name: str) -> None:
        self.call(self._stub.DeleteDiscovery, scheduler_pb2.DeleteDiscoveryRequest(name=name))

    def start_discovery(self, name: str) -> JobRun:
        """Queue a run now, outside any schedule."""
        request = scheduler_pb2.StartDiscoveryRequest(name=name)
        return _job_run(self.call(self._stub.StartDiscovery, request).job_run)

    # --- schedules ------------------------------------------------------------------------

    def create_schedule(self, schedule: Schedule) -> Schedule:
        s = schedule
        message = scheduler_pb2.Schedule(
            name=s.name,
            discovery=s.discovery,
            minute=s.minute,
            hour=s.hour,
            day_of_month=s.day_of_month,
            month=s.month,
            day_of_week=s.day_of_week,
            timezone=s.timezone,
            enabled=s.enabled,
            missed_run_policy=_missed_label(s.missed_run_policy),
        )
        request = scheduler_pb2.CreateScheduleRequest(schedule=message)
        return _schedule(self.call(self._stub.CreateSchedule, request).schedule)

    def schedules_page(self, discovery: str, page_size: int, page_token: str) -> tuple[list[Schedule], str]:
        """One page of schedules by name (of one discovery, if given) and the next page's token."""
        request = scheduler_pb2.ListSchedulesRequest(discovery=discovery, page_size=page_size, page_token=page_token)
        reply = self.call(self._stub.ListSchedules, request)
        return [_schedule(s) for s in reply.schedules], reply.next_page_token

    def set_schedule_enabled(self, name: str, enabled: bool) -> Schedule:
        request = scheduler_pb2.SetScheduleEnabledRequest(name=name, enabled=enabled)
        return _schedule(self.call(self._stub.SetScheduleEnabled, request).schedule)

    def delete_schedule(self, name: str) -> None:
        self.call(self._stub.DeleteSchedule, scheduler_pb2.DeleteScheduleRequest(name=name))

    # --- job runs -------------------------------------------------------------------------

    def job_runs_page(
        self,
        *,
        discovery: str = "",
        collector: str = "",
        state: str | None = None,
        created_since: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[JobRun], str]:
        """One page, newest first, and the next page's token ("" at the end); empty filters mean "any"."""
        request = scheduler_pb2.ListJobRunsRequest(
            discovery=discovery,
            collector=collector,
            # Protobuf takes an enum by its label; None leaves it unspecified, meaning "all".
            state=_JOB_STATE_PREFIX + state.upper() if state else None,
            page_size=page_size,
            page_token=page_token,
        )
        if created_since is not None:
            request.created_since.FromDatetime(created_since)
        reply = self.call(self._stub.ListJobRuns, request)
        return [_job_run(r) for r in reply.job_runs], reply.next_page_token

    def get_job_run(self, run_id: str) -> JobRunDetail:
        reply = self.call(self._stub.GetJobRun, scheduler_pb2.GetJobRunRequest(id=run_id))
        message = reply.job_run
        snapshot = _discovery(message.discovery_snapshot) if message.HasField("discovery_snapshot") else None
        return JobRunDetail(_job_run(message), snapshot)

    def cancel_job_run(self, run_id: str, *, reason: str) -> JobRun:
        request = scheduler_pb2.CancelJobRunRequest(id=run_id, reason=reason)
        return _job_run(self.call(self._stub.CancelJobRun, request).job_run)

    # --- settings -------------------------------------------------------------------------

    def get_settings(self) -> Settings:
        reply = self.call(self._stub.GetSettings, scheduler_pb2.GetSettingsRequest())
        return _settings(reply.settings)

    def update_settings(self, changes: dict[str, int]) -> Settings:
        """Change only the named settings (the request's field mask lists them)."""
        request = scheduler_pb2.UpdateSettingsRequest(settings=scheduler_pb2.Settings(**changes), fields=list(changes))
        return _settings(self.call(self._stub.UpdateSettings, request).settings)


def job_state_name(value: int) -> str:
    """`JOB_STATE_TIMED_OUT` -> "timed_out"; a value this client does not know -> its number."""
    try:
        name = agent_pb2.JobState.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(_JOB_STATE_PREFIX).lower()


def missed_policy_name(value: int) -> str:
    """`MISSED_RUN_POLICY_RUN_ONCE` -> "run-once"; unspecified -> ""; unknown -> its number."""
    if value == scheduler_pb2.MISSED_RUN_POLICY_UNSPECIFIED:
        return ""
    try:
        name = scheduler_pb2.MissedRunPolicy.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(_MISSED_PREFIX).lower().replace("_", "-")


def _missed_label(policy: str) -> str | None:
    return _MISSED_PREFIX + policy.upper().replace("-", "_") if policy else None


def _discovery_message(d: Discovery) -> scheduler_pb2.Discovery:
    return scheduler_pb2.Discovery(
        name=d.name,
        targets=d.targets,
        exclusions=d.exclusions,
        ports=d.ports,
        probes=d.probes,
        snmp_credential=d.snmp_credential,
        ssh_credential=d.ssh_credential,
        collector=d.collector,
        zone=d.zone,
        concurrency=d.concurrency,
        rate_per_second=d.rate_per_second,
        timeout_ms=d.timeout_ms,
        deadline_seconds=d.deadline_seconds,
        dns_resolver=d.dns_resolver,
        snmp_port=d.snmp_port,
        ssh_port=d.ssh_port,
    )


def _discovery(d: scheduler_pb2.Discovery) -> Discovery:
    return Discovery(
        name=d.name,
        targets=list(d.targets),
        exclusions=list(d.exclusions),
        ports=list(d.ports),
        probes=list(d.probes),
        snmp_credential=d.snmp_credential,
        ssh_credential=d.ssh_credential,
        collector=d.collector,
        zone=d.zone,
        concurrency=d.concurrency,
        rate_per_second=d.rate_per_second,
        timeout_ms=d.timeout_ms,
        deadline_seconds=d.deadline_seconds,
        dns_resolver=d.dns_resolver,
        snmp_port=d.snmp_port,
        ssh_port=d.ssh_port,
        created_at=time_field(d, "created_at"),
    )


def _schedule(s: scheduler_pb2.Schedule) -> Schedule:
    return Schedule(
        name=s.name,
        discovery=s.discovery,
        minute=s.minute,
        hour=s.hour,
        day_of_month=s.day_of_month,
        month=s.month,
        day_of_week=s.day_of_week,
        timezone=s.timezone,
        enabled=s.enabled,
        missed_run_policy=missed_policy_name(s.missed_run_policy),
        next_due_at=time_field(s, "next_due_at"),
        last_due_at=time_field(s, "last_due_at"),
        created_at=time_field(s, "created_at"),
    )


def _job_run(r: scheduler_pb2.JobRun) -> JobRun:
    return JobRun(
        id=r.id,
        discovery=r.discovery,
        schedule=r.schedule,
        trigger=r.trigger,
        state=job_state_name(r.state),
        collector=r.collector,
        targets_done=r.targets_done,
        targets_total=r.targets_total,
        devices_found=r.devices_found,
        reason=r.reason,
        due_at=time_field(r, "due_at"),
        created_at=time_field(r, "created_at"),
        started_at=time_field(r, "started_at"),
        finished_at=time_field(r, "finished_at"),
        dispatched_at=time_field(r, "dispatched_at"),
        target_collector=r.target_collector,
        target_zone=r.target_zone,
        gateway_id=r.gateway_id,
        collector_instance_uid=r.collector_instance_uid,
        batches_sent=r.batches_sent,
        cancelled_by=r.cancelled_by,
        attempt=r.attempt,
        lease_expires_at=time_field(r, "lease_expires_at"),
        observations_stale=r.observations_stale,
        waiting_reason=r.waiting_reason,
    )


def _settings(s: scheduler_pb2.Settings) -> Settings:
    return Settings(collector_check_minutes=s.collector_check_minutes)
