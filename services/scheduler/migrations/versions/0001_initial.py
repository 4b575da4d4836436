"""The scheduler's first tables: discoveries, schedules, job runs, dispatch events, settings.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REVISION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JOB_STATES = "'queued', 'dispatched', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled'"


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "discoveries",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("exclusions", sa.JSON(), nullable=False),
        sa.Column("ports", sa.JSON(), nullable=False),
        sa.Column("probes", sa.JSON(), nullable=False),
        sa.Column("snmp_credential", sa.String(256), nullable=False),
        sa.Column("ssh_credential", sa.String(256), nullable=False),
        sa.Column("collector", sa.String(256), nullable=False),
        sa.Column("zone", sa.String(256), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("rate_per_second", sa.Integer(), nullable=False),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.Column("deadline_seconds", sa.Integer(), nullable=False),
        sa.Column("dns_resolver", sa.String(256), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.CheckConstraint("(collector = '') <> (zone = '')", name="ck_discoveries_one_place"),
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column(
            "discovery",
            sa.String(128),
            sa.ForeignKey("discoveries.name", name="fk_schedules_discovery", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("minute", sa.String(128), nullable=False),
        sa.Column("hour", sa.String(128), nullable=False),
        sa.Column("day_of_month", sa.String(128), nullable=False),
        sa.Column("month", sa.String(128), nullable=False),
        sa.Column("day_of_week", sa.String(128), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("missed_run_policy", sa.String(16), nullable=False),
        sa.Column("last_evaluated_at", _utc(), nullable=False),
        sa.Column("next_due_at", _utc(), nullable=True),
        sa.Column("last_due_at", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.CheckConstraint("missed_run_policy IN ('skip', 'run_once')", name="ck_schedules_missed_run_policy"),
    )
    op.create_index("ix_schedules_enabled_next_due_at", "schedules", ["enabled", "next_due_at"])
    op.create_table(
        "job_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("discovery", sa.String(128), nullable=False),
        sa.Column("discovery_snapshot", sa.JSON(), nullable=False),
        sa.Column("schedule_name", sa.String(128), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("target_collector", sa.String(256), nullable=False),
        sa.Column("target_zone", sa.String(256), nullable=False),
        sa.Column("collector", sa.String(256), nullable=False),
        sa.Column("collector_instance_uid", sa.String(256), nullable=False),
        sa.Column("gateway_id", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("targets_done", sa.BigInteger(), nullable=False),
        sa.Column("targets_total", sa.BigInteger(), nullable=False),
        sa.Column("devices_found", sa.BigInteger(), nullable=False),
        sa.Column("batches_sent", sa.BigInteger(), nullable=False),
        sa.Column("due_at", _utc(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("dispatched_at", _utc(), nullable=True),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("deadline_at", _utc(), nullable=True),
        sa.Column("cancelled_by", sa.String(256), nullable=False),
        sa.Column("last_event_at", _utc(), nullable=True),
        sa.UniqueConstraint("schedule_name", "due_at", name="uq_job_runs_schedule_due_at"),
        sa.CheckConstraint(f"state IN ({_JOB_STATES})", name="ck_job_runs_state"),
        sa.CheckConstraint("trigger IN ('schedule', 'manual')", name="ck_job_runs_trigger"),
    )
    op.create_index("ix_job_runs_state_target_collector", "job_runs", ["state", "target_collector"])
    op.create_index("ix_job_runs_state_target_zone", "job_runs", ["state", "target_zone"])
    op.create_index("ix_job_runs_collector_state", "job_runs", ["collector", "state"])
    op.create_index("ix_job_runs_discovery", "job_runs", ["discovery"])
    op.create_index("ix_job_runs_created_at", "job_runs", ["created_at"])
    events = op.create_table(
        "dispatch_events",
        sa.Column("revision", _REVISION, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("job_run_id", sa.String(32), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.CheckConstraint("kind IN ('job_run', 'settings')", name="ck_dispatch_events_kind"),
        sqlite_autoincrement=True,
    )
    # The feed starts with one event (the settings as they are), so every bookmark a watcher
    # is given is at least 1 and `since_revision = 0` only ever means "start now".
    op.bulk_insert(events, [{"kind": "settings", "job_run_id": "", "created_at": datetime.now(UTC)}])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_table("dispatch_events")
    for index in (
        "ix_job_runs_created_at",
        "ix_job_runs_discovery",
        "ix_job_runs_collector_state",
        "ix_job_runs_state_target_zone",
        "ix_job_runs_state_target_collector",
    ):
        op.drop_index(index, table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_index("ix_schedules_enabled_next_due_at", table_name="schedules")
    op.drop_table("schedules")
    op.drop_table("discoveries")
