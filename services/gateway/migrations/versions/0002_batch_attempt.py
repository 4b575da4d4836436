"""The run attempt joins a result batch's identity (ADR 0010).

A run handed out again after its lease expired numbers its batches from 1 again; without
the attempt in the key, the second attempt's batches would collide with the first's and
be dropped as duplicates. Batches committed before this revision keep attempt 0, which
is what a collector that predates attempts sends.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ["collector_instance_uid", "job_run_id", "sequence"]
NEW_KEY = ["collector_instance_uid", "job_run_id", "attempt", "sequence"]
PRIMARY_KEY = "ingested_batches_pkey"
"""PostgreSQL's default name for the key 0001 created."""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("ingested_batches", sa.Column("attempt", sa.BigInteger(), nullable=False, server_default="0"))
        op.drop_constraint(PRIMARY_KEY, "ingested_batches", type_="primary")
        op.create_primary_key(PRIMARY_KEY, "ingested_batches", NEW_KEY)
    else:
        _rebuild_on_sqlite(NEW_KEY, "0")


def downgrade() -> None:
    # Two attempts of one run may share (uid, run, sequence) now: keep the lowest attempt's.
    op.execute(
        "DELETE FROM ingested_batches WHERE EXISTS (SELECT 1 FROM ingested_batches AS o"
        " WHERE o.collector_instance_uid = ingested_batches.collector_instance_uid"
        " AND o.job_run_id = ingested_batches.job_run_id AND o.sequence = ingested_batches.sequence"
        " AND o.attempt < ingested_batches.attempt)"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(PRIMARY_KEY, "ingested_batches", type_="primary")
        op.create_primary_key(PRIMARY_KEY, "ingested_batches", OLD_KEY)
        op.drop_column("ingested_batches", "attempt")
    else:
        _rebuild_on_sqlite(OLD_KEY, None)


def _rebuild_on_sqlite(key: list[str], attempt_default: str | None) -> None:
    """SQLite cannot change a primary key: copy the rows into a table built with the new one."""
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("collector_instance_uid", sa.String(256), nullable=False),
        sa.Column("job_run_id", sa.String(256), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
    ]
    if attempt_default is not None:
        columns.append(sa.Column("attempt", sa.BigInteger(), nullable=False, server_default=attempt_default))
    op.create_table("ingested_batches_rebuilt", *columns, sa.PrimaryKeyConstraint(*key))
    op.execute(
        "INSERT INTO ingested_batches_rebuilt (collector_instance_uid, job_run_id, sequence, committed_at, devices)"
        " SELECT collector_instance_uid, job_run_id, sequence, committed_at, devices FROM ingested_batches"
    )
    op.drop_index("ix_ingested_batches_committed_at", table_name="ingested_batches")
    op.drop_table("ingested_batches")
    op.rename_table("ingested_batches_rebuilt", "ingested_batches")
    op.create_index("ix_ingested_batches_committed_at", "ingested_batches", ["committed_at"])
