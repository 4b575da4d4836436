"""Each job run's attempt count and lease (ADR 0010).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_LEASE_SECONDS = 90
"""The default `--lease-seconds`; this revision cannot know the configured value."""

_runs = sa.table(
    "job_runs",
    sa.column("state", sa.String()),
    sa.column("dispatched_at", sa.DateTime(timezone=True)),
    sa.column("attempt", sa.Integer()),
    sa.column("lease_expires_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    # Plain ADD COLUMN with literal defaults, as in 0002 (no table copy on SQLite).
    op.add_column("job_runs", sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("job_runs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_job_runs_lease_expires_at", "job_runs", ["lease_expires_at"])
    # Runs handed out before this revision were handed out once (a requeue cleared
    # `dispatched_at`). Those still dispatched or running get a lease from now, so their
    # collectors have a full lease to be heard from before the sweep takes them back.
    op.execute(_runs.update().where(_runs.c.dispatched_at.is_not(None)).values(attempt=1))
    expires = datetime.now(UTC) + timedelta(seconds=BACKFILL_LEASE_SECONDS)
    if op.get_bind().dialect.name == "sqlite":
        expires = expires.replace(tzinfo=None)  # stored as naive UTC, as `UtcDateTime` does
    op.execute(_runs.update().where(_runs.c.state.in_(["dispatched", "running"])).values(lease_expires_at=expires))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+) after the index that names it, as in 0002.
    op.drop_index("ix_job_runs_lease_expires_at", table_name="job_runs")
    op.drop_column("job_runs", "lease_expires_at")
    op.drop_column("job_runs", "attempt")
