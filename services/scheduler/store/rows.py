"""Rows to domain dataclasses and back; the only place that knows both shapes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from services.scheduler.domain.cron import CronSpec
from services.scheduler.domain.discoveries import Discovery, from_snapshot, snapshot
from services.scheduler.domain.job_runs import JobRun, JobState, Trigger
from services.scheduler.domain.schedules import MissedRunPolicy, Schedule
from services.scheduler.store.models import DiscoveryRow, JobRunRow, ScheduleRow

RUN_MUTABLE_FIELDS = (
    "state",
    "reason",
    "collector",
    "collector_instance_uid",
    "gateway_id",
    "targets_done",
    "targets_total",
    "devices_found",
    "batches_sent",
    "dispatched_at",
    "started_at",
    "finished_at",
    "deadline_at",
    "cancelled_by",
    "attempt",
    "lease_expires_at",
)
"""What a state change may write; identity, target, snapshot and due time never change."""


def discovery_values(d: Discovery) -> dict[str, Any]:
    return {
        "name": d.name,
        "targets": list(d.targets),
        "exclusions": list(d.exclusions),
        "ports": list(d.ports),
        "probes": list(d.probes),
        "snmp_credential": d.snmp_credential,
        "ssh_credential": d.ssh_credential,
        "collector": d.collector,
        "zone": d.zone,
        "concurrency": d.concurrency,
        "rate_per_second": d.rate_per_second,
        "timeout_ms": d.timeout_ms,
        "deadline_seconds": d.deadline_seconds,
        "dns_resolver": d.dns_resolver,
        "snmp_port": d.snmp_port,
        "ssh_port": d.ssh_port,
        "created_at": d.created_at,
    }


def discovery(row: DiscoveryRow | Row[Any]) -> Discovery:
    """From an ORM row or a Core row of `discoveries` (the same attribute names)."""
    return Discovery(
        name=row.name,
        targets=tuple(row.targets),
        exclusions=tuple(row.exclusions),
        ports=tuple(row.ports),
        probes=tuple(row.probes),
        snmp_credential=row.snmp_credential,
        ssh_credential=row.ssh_credential,
        collector=row.collector,
        zone=row.zone,
        concurrency=row.concurrency,
        rate_per_second=row.rate_per_second,
        timeout_ms=row.timeout_ms,
        deadline_seconds=row.deadline_seconds,
        dns_resolver=row.dns_resolver,
        snmp_port=row.snmp_port,
        ssh_port=row.ssh_port,
        created_at=row.created_at,
    )


def schedule_values(s: Schedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "discovery": s.discovery,
        "minute": s.cron.minute,
        "hour": s.cron.hour,
        "day_of_month": s.cron.day_of_month,
        "month": s.cron.month,
        "day_of_week": s.cron.day_of_week,
        "timezone": s.cron.timezone,
        "enabled": s.enabled,
        "missed_run_policy": s.missed_run_policy.value,
        "last_evaluated_at": s.last_evaluated_at,
        "next_due_at": s.next_due_at,
        "last_due_at": s.last_due_at,
        "created_at": s.created_at,
    }


def schedule(row: ScheduleRow) -> Schedule:
    return Schedule(
        name=row.name,
        discovery=row.discovery,
        cron=CronSpec(
            minute=row.minute,
            hour=row.hour,
            day_of_month=row.day_of_month,
            month=row.month,
            day_of_week=row.day_of_week,
            timezone=row.timezone,
        ),
        enabled=row.enabled,
        missed_run_policy=MissedRunPolicy(row.missed_run_policy),
        created_at=row.created_at,
        last_evaluated_at=row.last_evaluated_at,
        next_due_at=row.next_due_at,
        last_due_at=row.last_due_at,
    )


def run_values(run: JobRun) -> dict[str, Any]:
    values = {name: getattr(run, name) for name in RUN_MUTABLE_FIELDS}
    values["state"] = run.state.value
    return values | {
        "id": run.id,
        "discovery": run.discovery,
        "discovery_snapshot": snapshot(run.discovery_snapshot),
        "schedule_name": run.schedule,
        "trigger": run.trigger.value,
        "target_collector": run.target_collector,
        "target_zone": run.target_zone,
        "due_at": run.due_at,
        "created_at": run.created_at,
        "last_event_at": run.last_event_at,
    }


def changed_run_values(run: JobRun) -> dict[str, Any]:
    values = {name: getattr(run, name) for name in RUN_MUTABLE_FIELDS}
    values["state"] = run.state.value
    return values


def job_run(row: JobRunRow | Row[Any]) -> JobRun:
    """From an ORM row or a Core row of `job_runs` (the same attribute names)."""
    return JobRun(
        id=row.id,
        discovery=row.discovery,
        discovery_snapshot=from_snapshot(row.discovery_snapshot),
        trigger=Trigger(row.trigger),
        state=JobState(row.state),
        due_at=row.due_at,
        created_at=row.created_at,
        schedule=row.schedule_name,
        target_collector=row.target_collector,
        target_zone=row.target_zone,
        collector=row.collector,
        collector_instance_uid=row.collector_instance_uid,
        gateway_id=row.gateway_id,
        reason=row.reason,
        targets_done=row.targets_done,
        targets_total=row.targets_total,
        devices_found=row.devices_found,
        batches_sent=row.batches_sent,
        dispatched_at=row.dispatched_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        deadline_at=row.deadline_at,
        cancelled_by=row.cancelled_by,
        attempt=row.attempt,
        lease_expires_at=row.lease_expires_at,
        observations_stale=row.observations_stale,
        last_event_at=row.last_event_at,
        waiting_reason=row.waiting_reason,
        waiting_cause=row.waiting_cause,
    )
