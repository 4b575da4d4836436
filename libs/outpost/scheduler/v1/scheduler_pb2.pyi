import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from outpost.agent.v1 import agent_pb2 as _agent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MissedRunPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MISSED_RUN_POLICY_UNSPECIFIED: _ClassVar[MissedRunPolicy]
    MISSED_RUN_POLICY_SKIP: _ClassVar[MissedRunPolicy]
    MISSED_RUN_POLICY_RUN_ONCE: _ClassVar[MissedRunPolicy]
MISSED_RUN_POLICY_UNSPECIFIED: MissedRunPolicy
MISSED_RUN_POLICY_SKIP: MissedRunPolicy
MISSED_RUN_POLICY_RUN_ONCE: MissedRunPolicy

class Discovery(_message.Message):
    __slots__ = ("name", "targets", "exclusions", "ports", "probes", "snmp_credential", "ssh_credential", "collector", "zone", "concurrency", "rate_per_second", "timeout_ms", "deadline_seconds", "dns_resolver", "created_at", "snmp_port", "ssh_port")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIONS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    PROBES_FIELD_NUMBER: _ClassVar[int]
    SNMP_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    SSH_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DNS_RESOLVER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SNMP_PORT_FIELD_NUMBER: _ClassVar[int]
    SSH_PORT_FIELD_NUMBER: _ClassVar[int]
    name: str
    targets: _containers.RepeatedScalarFieldContainer[str]
    exclusions: _containers.RepeatedScalarFieldContainer[str]
    ports: _containers.RepeatedScalarFieldContainer[int]
    probes: _containers.RepeatedScalarFieldContainer[str]
    snmp_credential: str
    ssh_credential: str
    collector: str
    zone: str
    concurrency: int
    rate_per_second: int
    timeout_ms: int
    deadline_seconds: int
    dns_resolver: str
    created_at: _timestamp_pb2.Timestamp
    snmp_port: int
    ssh_port: int
    def __init__(self, name: _Optional[str] = ..., targets: _Optional[_Iterable[str]] = ..., exclusions: _Optional[_Iterable[str]] = ..., ports: _Optional[_Iterable[int]] = ..., probes: _Optional[_Iterable[str]] = ..., snmp_credential: _Optional[str] = ..., ssh_credential: _Optional[str] = ..., collector: _Optional[str] = ..., zone: _Optional[str] = ..., concurrency: _Optional[int] = ..., rate_per_second: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., deadline_seconds: _Optional[int] = ..., dns_resolver: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., snmp_port: _Optional[int] = ..., ssh_port: _Optional[int] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("name", "discovery", "minute", "hour", "day_of_month", "month", "day_of_week", "timezone", "enabled", "missed_run_policy", "next_due_at", "last_due_at", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_FIELD_NUMBER: _ClassVar[int]
    MINUTE_FIELD_NUMBER: _ClassVar[int]
    HOUR_FIELD_NUMBER: _ClassVar[int]
    DAY_OF_MONTH_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    DAY_OF_WEEK_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MISSED_RUN_POLICY_FIELD_NUMBER: _ClassVar[int]
    NEXT_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    discovery: str
    minute: str
    hour: str
    day_of_month: str
    month: str
    day_of_week: str
    timezone: str
    enabled: bool
    missed_run_policy: MissedRunPolicy
    next_due_at: _timestamp_pb2.Timestamp
    last_due_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., discovery: _Optional[str] = ..., minute: _Optional[str] = ..., hour: _Optional[str] = ..., day_of_month: _Optional[str] = ..., month: _Optional[str] = ..., day_of_week: _Optional[str] = ..., timezone: _Optional[str] = ..., enabled: _Optional[bool] = ..., missed_run_policy: _Optional[_Union[MissedRunPolicy, str]] = ..., next_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JobRun(_message.Message):
    __slots__ = ("id", "discovery", "schedule", "trigger", "target_collector", "target_zone", "collector", "collector_instance_uid", "gateway_id", "state", "reason", "targets_done", "targets_total", "devices_found", "due_at", "created_at", "dispatched_at", "started_at", "finished_at", "batches_sent", "cancelled_by", "discovery_snapshot", "attempt", "lease_expires_at", "observations_stale", "waiting_reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    TARGET_COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    TARGET_ZONE_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TARGETS_DONE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FOUND_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    BATCHES_SENT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_BY_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_STALE_FIELD_NUMBER: _ClassVar[int]
    WAITING_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    discovery: str
    schedule: str
    trigger: str
    target_collector: str
    target_zone: str
    collector: str
    collector_instance_uid: str
    gateway_id: str
    state: _agent_pb2.JobState
    reason: str
    targets_done: int
    targets_total: int
    devices_found: int
    due_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    dispatched_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    batches_sent: int
    cancelled_by: str
    discovery_snapshot: Discovery
    attempt: int
    lease_expires_at: _timestamp_pb2.Timestamp
    observations_stale: int
    waiting_reason: str
    def __init__(self, id: _Optional[str] = ..., discovery: _Optional[str] = ..., schedule: _Optional[str] = ..., trigger: _Optional[str] = ..., target_collector: _Optional[str] = ..., target_zone: _Optional[str] = ..., collector: _Optional[str] = ..., collector_instance_uid: _Optional[str] = ..., gateway_id: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.JobState, str]] = ..., reason: _Optional[str] = ..., targets_done: _Optional[int] = ..., targets_total: _Optional[int] = ..., devices_found: _Optional[int] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dispatched_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., batches_sent: _Optional[int] = ..., cancelled_by: _Optional[str] = ..., discovery_snapshot: _Optional[_Union[Discovery, _Mapping]] = ..., attempt: _Optional[int] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., observations_stale: _Optional[int] = ..., waiting_reason: _Optional[str] = ...) -> None: ...

class Settings(_message.Message):
    __slots__ = ("collector_check_minutes",)
    COLLECTOR_CHECK_MINUTES_FIELD_NUMBER: _ClassVar[int]
    collector_check_minutes: int
    def __init__(self, collector_check_minutes: _Optional[int] = ...) -> None: ...

class CreateDiscoveryRequest(_message.Message):
    __slots__ = ("discovery", "allow_unknown")
    DISCOVERY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    discovery: Discovery
    allow_unknown: bool
    def __init__(self, discovery: _Optional[_Union[Discovery, _Mapping]] = ..., allow_unknown: _Optional[bool] = ...) -> None: ...

class CreateDiscoveryResponse(_message.Message):
    __slots__ = ("discovery",)
    DISCOVERY_FIELD_NUMBER: _ClassVar[int]
    discovery: Discovery
    def __init__(self, discovery: _Optional[_Union[Discovery, _Mapping]] = ...) -> None: ...

class ListDiscoveriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDiscoveriesResponse(_message.Message):
    __slots__ = ("discoveries", "next_page_token")
    DISCOVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    discoveries: _containers.RepeatedCompositeFieldContainer[Discovery]
    next_page_token: str
    def __init__(self, discoveries: _Optional[_Iterable[_Union[Discovery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDiscoveryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetDiscoveryResponse(_message.Message):
    __slots__ = ("discovery",)
    DISCOVERY_FIELD_NUMBER: _ClassVar[int]
    discovery: Discovery
    def __init__(self, discovery: _Optional[_Union[Discovery, _Mapping]] = ...) -> None: ...

class DeleteDiscoveryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteDiscoveryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateScheduleRequest(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ...) -> None: ...

class CreateScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "discovery")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    discovery: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., discovery: _Optional[str] = ...) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules", "next_page_token")
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[Schedule]
    next_page_token: str
    def __init__(self, schedules: _Optional[_Iterable[_Union[Schedule, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteScheduleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetScheduleEnabledRequest(_message.Message):
    __slots__ = ("name", "enabled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    enabled: bool
    def __init__(self, name: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class SetScheduleEnabledResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ...) -> None: ...

class StartDiscoveryRequest(_message.Message):
    __slots__ = ("name", "actor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    actor: str
    def __init__(self, name: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class StartDiscoveryResponse(_message.Message):
    __slots__ = ("job_run",)
    JOB_RUN_FIELD_NUMBER: _ClassVar[int]
    job_run: JobRun
    def __init__(self, job_run: _Optional[_Union[JobRun, _Mapping]] = ...) -> None: ...

class ListJobRunsRequest(_message.Message):
    __slots__ = ("discovery", "collector", "state", "limit", "page_size", "page_token", "created_since")
    DISCOVERY_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREATED_SINCE_FIELD_NUMBER: _ClassVar[int]
    discovery: str
    collector: str
    state: _agent_pb2.JobState
    limit: int
    page_size: int
    page_token: str
    created_since: _timestamp_pb2.Timestamp
    def __init__(self, discovery: _Optional[str] = ..., collector: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.JobState, str]] = ..., limit: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., created_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListJobRunsResponse(_message.Message):
    __slots__ = ("job_runs", "next_page_token")
    JOB_RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_runs: _containers.RepeatedCompositeFieldContainer[JobRun]
    next_page_token: str
    def __init__(self, job_runs: _Optional[_Iterable[_Union[JobRun, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetJobRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetJobRunResponse(_message.Message):
    __slots__ = ("job_run",)
    JOB_RUN_FIELD_NUMBER: _ClassVar[int]
    job_run: JobRun
    def __init__(self, job_run: _Optional[_Union[JobRun, _Mapping]] = ...) -> None: ...

class CancelJobRunRequest(_message.Message):
    __slots__ = ("id", "reason", "actor")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    actor: str
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class CancelJobRunResponse(_message.Message):
    __slots__ = ("job_run",)
    JOB_RUN_FIELD_NUMBER: _ClassVar[int]
    job_run: JobRun
    def __init__(self, job_run: _Optional[_Union[JobRun, _Mapping]] = ...) -> None: ...

class GetSettingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSettingsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: Settings
    def __init__(self, settings: _Optional[_Union[Settings, _Mapping]] = ...) -> None: ...

class UpdateSettingsRequest(_message.Message):
    __slots__ = ("settings", "fields")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    settings: Settings
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, settings: _Optional[_Union[Settings, _Mapping]] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateSettingsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: Settings
    def __init__(self, settings: _Optional[_Union[Settings, _Mapping]] = ...) -> None: ...

class WatchDispatchRequest(_message.Message):
    __slots__ = ("since_revision",)
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    since_revision: int
    def __init__(self, since_revision: _Optional[int] = ...) -> None: ...

class DispatchEvent(_message.Message):
    __slots__ = ("revision", "job_run", "settings", "bookmark")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    JOB_RUN_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    BOOKMARK_FIELD_NUMBER: _ClassVar[int]
    revision: int
    job_run: JobRun
    settings: Settings
    bookmark: Bookmark
    def __init__(self, revision: _Optional[int] = ..., job_run: _Optional[_Union[JobRun, _Mapping]] = ..., settings: _Optional[_Union[Settings, _Mapping]] = ..., bookmark: _Optional[_Union[Bookmark, _Mapping]] = ...) -> None: ...

class Bookmark(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClaimJobRunsRequest(_message.Message):
    __slots__ = ("gateway_id", "collector_instance_uid", "collector", "zone", "limit")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    collector_instance_uid: str
    collector: str
    zone: str
    limit: int
    def __init__(self, gateway_id: _Optional[str] = ..., collector_instance_uid: _Optional[str] = ..., collector: _Optional[str] = ..., zone: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ClaimJobRunsResponse(_message.Message):
    __slots__ = ("job_runs",)
    JOB_RUNS_FIELD_NUMBER: _ClassVar[int]
    job_runs: _containers.RepeatedCompositeFieldContainer[JobRun]
    def __init__(self, job_runs: _Optional[_Iterable[_Union[JobRun, _Mapping]]] = ...) -> None: ...

class ReportJobUpdateRequest(_message.Message):
    __slots__ = ("gateway_id", "collector_instance_uid", "update", "observations_stale")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_STALE_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    collector_instance_uid: str
    update: _agent_pb2.JobUpdate
    observations_stale: int
    def __init__(self, gateway_id: _Optional[str] = ..., collector_instance_uid: _Optional[str] = ..., update: _Optional[_Union[_agent_pb2.JobUpdate, _Mapping]] = ..., observations_stale: _Optional[int] = ...) -> None: ...

class ReportJobUpdateResponse(_message.Message):
    __slots__ = ("job_run",)
    JOB_RUN_FIELD_NUMBER: _ClassVar[int]
    job_run: JobRun
    def __init__(self, job_run: _Optional[_Union[JobRun, _Mapping]] = ...) -> None: ...

class LeaseHold(_message.Message):
    __slots__ = ("job_run_id", "collector_instance_uid")
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    job_run_id: str
    collector_instance_uid: str
    def __init__(self, job_run_id: _Optional[str] = ..., collector_instance_uid: _Optional[str] = ...) -> None: ...

class RenewLeasesRequest(_message.Message):
    __slots__ = ("gateway_id", "holds")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    holds: _containers.RepeatedCompositeFieldContainer[LeaseHold]
    def __init__(self, gateway_id: _Optional[str] = ..., holds: _Optional[_Iterable[_Union[LeaseHold, _Mapping]]] = ...) -> None: ...

class LostLease(_message.Message):
    __slots__ = ("job_run_id", "collector_instance_uid", "reason")
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_run_id: str
    collector_instance_uid: str
    reason: str
    def __init__(self, job_run_id: _Optional[str] = ..., collector_instance_uid: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RenewLeasesResponse(_message.Message):
    __slots__ = ("lost", "lease_seconds")
    LOST_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    lost: _containers.RepeatedCompositeFieldContainer[LostLease]
    lease_seconds: int
    def __init__(self, lost: _Optional[_Iterable[_Union[LostLease, _Mapping]]] = ..., lease_seconds: _Optional[int] = ...) -> None: ...
