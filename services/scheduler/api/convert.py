"""Protobuf messages to domain dataclasses and back, for the scheduler's servicer."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from outpost.agent.v1 import agent_pb2
from outpost.scheduler.v1 import scheduler_pb2
from services.scheduler.domain.discoveries import Discovery
from services.scheduler.domain.dispatch import DispatchEvent, EventKind
from services.scheduler.domain.job_runs import JobRun, JobState, JobUpdate
from services.scheduler.domain.leases import LeaseHold, LostLease
from services.scheduler.domain.schedules import MissedRunPolicy, Schedule
from services.scheduler.domain.settings import Settings

JS = agent_pb2.JobState
STATE_TO_PROTO = {
    JobState.QUEUED: JS.JOB_STATE_QUEUED,
    JobState.DISPATCHED: JS.JOB_STATE_DISPATCHED,
    JobState.RUNNING: JS.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: JS.JOB_STATE_SUCCEEDED,
    JobState.FAILED: JS.JOB_STATE_FAILED,
    JobState.TIMED_OUT: JS.JOB_STATE_TIMED_OUT,
    JobState.CANCELLED: JS.JOB_STATE_CANCELLED,
}
STATE_FROM_PROTO = {proto: state for state, proto in STATE_TO_PROTO.items()}
POLICY_TO_PROTO = {
    MissedRunPolicy.SKIP: scheduler_pb2.MISSED_RUN_POLICY_SKIP,
    MissedRunPolicy.RUN_ONCE: scheduler_pb2.MISSED_RUN_POLICY_RUN_ONCE,
}
POLICY_FROM_PROTO = {proto: policy for policy, proto in POLICY_TO_PROTO.items()}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def discovery_from_proto(d: scheduler_pb2.Discovery) -> Discovery:
    return Discovery(
        name=d.name,
        targets=tuple(d.targets),
        exclusions=tuple(d.exclusions),
        ports=tuple(d.ports),
        probes=tuple(d.probes),
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


def discovery(d: Discovery) -> scheduler_pb2.Discovery:
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
        created_at=timestamp(d.created_at),
    )


def schedule(s: Schedule) -> scheduler_pb2.Schedule:
    return scheduler_pb2.Schedule(
        name=s.name,
        discovery=s.discovery,
        minute=s.cron.minute,
        hour=s.cron.hour,
        day_of_month=s.cron.day_of_month,
        month=s.cron.month,
        day_of_week=s.cron.day_of_week,
        timezone=s.cron.timezone,
        enabled=s.enabled,
        missed_run_policy=POLICY_TO_PROTO[s.missed_run_policy],
        next_due_at=timestamp(s.next_due_at if s.enabled else None),
        last_due_at=timestamp(s.last_due_at),
        created_at=timestamp(s.created_at),
    )


def job_run(r: JobRun) -> scheduler_pb2.JobRun:
    return scheduler_pb2.JobRun(
        id=r.id,
        discovery=r.discovery,
        schedule=r.schedule or "",
        trigger=r.trigger.value,
        target_collector=r.target_collector,
        target_zone=r.target_zone,
        collector=r.collector,
        collector_instance_uid=r.collector_instance_uid,
        gateway_id=r.gateway_id,
        state=STATE_TO_PROTO[r.state],
        reason=r.reason,
        targets_done=r.targets_done,
        targets_total=r.targets_total,
        devices_found=r.devices_found,
        due_at=timestamp(r.due_at),
        created_at=timestamp(r.created_at),
        dispatched_at=timestamp(r.dispatched_at),
        started_at=timestamp(r.started_at),
        finished_at=timestamp(r.finished_at),
        batches_sent=r.batches_sent,
        cancelled_by=r.cancelled_by,
        discovery_snapshot=discovery(r.discovery_snapshot),
        attempt=r.attempt,
        lease_expires_at=timestamp(r.lease_expires_at),
        waiting_reason=r.waiting_reason if r.state is JobState.QUEUED else "",
        observations_stale=r.observations_stale,
    )


def job_update(u: agent_pb2.JobUpdate) -> JobUpdate:
    return JobUpdate(
        job_run_id=u.job_run_id,
        state=STATE_FROM_PROTO.get(u.state),
        targets_done=u.targets_done,
        targets_total=u.targets_total,
        devices_found=u.devices_found,
        error=u.error,
        batches_sent=u.batches_sent,
        attempt=u.attempt,
    )


def lease_hold(h: scheduler_pb2.LeaseHold) -> LeaseHold:
    return LeaseHold(job_run_id=h.job_run_id, collector_instance_uid=h.collector_instance_uid)


def lost_lease(lost: LostLease) -> scheduler_pb2.LostLease:
    return scheduler_pb2.LostLease(
        job_run_id=lost.job_run_id, collector_instance_uid=lost.collector_instance_uid, reason=lost.reason
    )


def settings(s: Settings) -> scheduler_pb2.Settings:
    return scheduler_pb2.Settings(collector_check_minutes=s.collector_check_minutes)


def settings_from_proto(s: scheduler_pb2.Settings) -> Settings:
    return Settings(collector_check_minutes=s.collector_check_minutes)


def dispatch_event(e: DispatchEvent) -> scheduler_pb2.DispatchEvent:
    if e.kind is EventKind.JOB_RUN and e.job_run is not None:
        return scheduler_pb2.DispatchEvent(revision=e.revision, job_run=job_run(e.job_run))
    if e.kind is EventKind.SETTINGS and e.settings is not None:
        return scheduler_pb2.DispatchEvent(revision=e.revision, settings=settings(e.settings))
    return scheduler_pb2.DispatchEvent(revision=e.revision, bookmark=scheduler_pb2.Bookmark())
