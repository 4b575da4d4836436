"""The scheduler's tables, as SQLAlchemy 2 declarative models.

`migrations/versions/` creates exactly these; a change here needs a new migration.
On PostgreSQL they live in the `scheduler` schema (chosen by `search_path`, so no schema
is named here); on SQLite in the scheduler's own file.

`job_runs` keeps the discovery's name and a JSON snapshot of it, not a foreign key: a
run's history outlives its discovery and schedule. `UNIQUE (schedule_name, due_at)` is
what makes each due minute one run however many replicas tick (manual runs have no
schedule, and NULLs never collide).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from outpost.auth import audit
from outpost.store_types import UtcDateTime

REVISION_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""BIGINT on PostgreSQL; INTEGER on SQLite, where only that is an AUTOINCREMENT rowid."""

JOB_STATES = ("queued", "dispatched", "running", "succeeded", "failed", "timed_out", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    pass


class DiscoveryRow(Base):
    __tablename__ = "discoveries"
    __table_args__ = (sa.CheckConstraint("(collector = '') <> (zone = '')", name="ck_discoveries_one_place"),)

    name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    targets: Mapped[list[str]] = mapped_column(sa.JSON())
    exclusions: Mapped[list[str]] = mapped_column(sa.JSON())
    ports: Mapped[list[int]] = mapped_column(sa.JSON())
    probes: Mapped[list[str]] = mapped_column(sa.JSON())
    snmp_credential: Mapped[str] = mapped_column(sa.String(256), default="")
    ssh_credential: Mapped[str] = mapped_column(sa.String(256), default="")
    collector: Mapped[str] = mapped_column(sa.String(256), default="")
    zone: Mapped[str] = mapped_column(sa.String(256), default="")
    concurrency: Mapped[int] = mapped_column(sa.Integer())
    rate_per_second: Mapped[int] = mapped_column(sa.Integer())
    timeout_ms: Mapped[int] = mapped_column(sa.Integer())
    deadline_seconds: Mapped[int] = mapped_column(sa.Integer())
    dns_resolver: Mapped[str] = mapped_column(sa.String(256), default="")
    # 0 = the probe's standard port (161, 22); added by 0002, hence the server default.
    snmp_port: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    ssh_port: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ScheduleRow(Base):
    __tablename__ = "schedules"
    __table_args__ = (
        sa.CheckConstraint(_in("missed_run_policy", ("skip", "run_once")), name="ck_schedules_missed_run_policy"),
        sa.Index("ix_schedules_enabled_next_due_at", "enabled", "next_due_at"),
    )

    name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    discovery: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("discoveries.name", name="fk_schedules_discovery", ondelete="RESTRICT")
    )
    minute: Mapped[str] = mapped_column(sa.String(128))
    hour: Mapped[str] = mapped_column(sa.String(128))
    day_of_month: Mapped[str] = mapped_column(sa.String(128))
    month: Mapped[str] = mapped_column(sa.String(128))
    day_of_week: Mapped[str] = mapped_column(sa.String(128))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    enabled: Mapped[bool] = mapped_column(sa.Boolean())
    missed_run_policy: Mapped[str] = mapped_column(sa.String(16))
    last_evaluated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class JobRunRow(Base):
    __tablename__ = "job_runs"
    __table_args__ = (
        sa.UniqueConstraint("schedule_name", "due_at", name="uq_job_runs_schedule_due_at"),
        sa.CheckConstraint(_in("state", JOB_STATES), name="ck_job_runs_state"),
        sa.CheckConstraint(_in("trigger", ("schedule", "manual")), name="ck_job_runs_trigger"),
        sa.Index("ix_job_runs_state_target_collector", "state", "target_collector"),
        sa.Index("ix_job_runs_state_target_zone", "state", "target_zone"),
        sa.Index("ix_job_runs_collector_state", "collector", "state"),
        # `jobs list` pages newest first on (created_at, id), optionally of one discovery.
        sa.Index("ix_job_runs_discovery_created_at_id", "discovery", "created_at", "id"),
        sa.Index("ix_job_runs_created_at_id", "created_at", "id"),
        # The lease sweep: `lease_expires_at <= now`. Only dispatched and running runs have
        # a lease (every other state clears it), so the range holds just the active runs.
        sa.Index("ix_job_runs_lease_expires_at", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    discovery: Mapped[str] = mapped_column(sa.String(128))
    discovery_snapshot: Mapped[dict[str, Any]] = mapped_column(sa.JSON())
    schedule_name: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    trigger: Mapped[str] = mapped_column(sa.String(16))
    target_collector: Mapped[str] = mapped_column(sa.String(256), default="")
    target_zone: Mapped[str] = mapped_column(sa.String(256), default="")
    collector: Mapped[str] = mapped_column(sa.String(256), default="")
    collector_instance_uid: Mapped[str] = mapped_column(sa.String(256), default="")
    gateway_id: Mapped[str] = mapped_column(sa.String(256), default="")
    state: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.Text(), default="")
    targets_done: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    targets_total: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    devices_found: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    batches_sent: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    cancelled_by: Mapped[str] = mapped_column(sa.String(256), default="")
    last_event_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Added by 0003, hence the server default (runs stored before it were never re-tried).
    attempt: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Added by 0006: why a queued run waits (`domain.waiting`), refreshed by the ticker.
    waiting_reason: Mapped[str] = mapped_column(sa.Text(), default="", server_default="")
    waiting_cause: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    # Added by 0005 (which follows 0006); the gateway's count of the run's observations skipped as stale.
    observations_stale: Mapped[int] = mapped_column(sa.BigInteger(), default=0, server_default="0")


class DispatchEventRow(Base):
    """The change log the dispatch watch reads; `revision` orders it globally."""

    __tablename__ = "dispatch_events"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", ("job_run", "settings")), name="ck_dispatch_events_kind"),
        {"sqlite_autoincrement": True},
    )

    revision: Mapped[int] = mapped_column(REVISION_TYPE, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    job_run_id: Mapped[str] = mapped_column(sa.String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SettingRow(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(256))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


metadata = Base.metadata

AUDIT_EVENTS = audit.define_table(metadata)
"""Every change made through an admin RPC (`outpost.auth.audit`)."""
