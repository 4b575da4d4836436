"""Device notes, and the observations each committed batch skipped as stale (issue 10, items 3-4).

`device_notes` keeps what the probes said about a device besides facts ("snmp: no answer"):
per source (the probe), the newest notes, with the time and run (domain/notes.py). Notes
are the latest findings, not history.

`ingested_batches.stale_observations` counts the batch's observations skipped as older
than what another run had recorded; the gateway sums them per run for the scheduler's
`JobRun.observations_stale`. Batches committed before this skipped uncounted: 0. The
partial index holds only batches that skipped something, so summing a run reads a few rows
and costs the hot path nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STALE_INDEX = "ix_ingested_batches_job_run_id_stale"


def upgrade() -> None:
    op.create_table(
        "device_notes",
        sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("noted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_run_id", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "source", "note"),
    )
    op.add_column("ingested_batches", sa.Column("stale_observations", sa.Integer(), nullable=False, server_default="0"))
    op.create_index(
        STALE_INDEX,
        "ingested_batches",
        ["job_run_id"],
        postgresql_where=sa.text("stale_observations > 0"),
        sqlite_where=sa.text("stale_observations > 0"),
    )


def downgrade() -> None:
    op.drop_index(STALE_INDEX, table_name="ingested_batches")
    with op.batch_alter_table("ingested_batches") as batch:
        batch.drop_column("stale_observations")
    op.drop_table("device_notes")
