"""Device lifecycle and history pages: missed runs per discovery, retirement, a keyset index.

Additive only: `devices` gains `retired_at` (NULL: active) and `retired_reason` (''), a new
table counts each device's missed runs per discovery, and `device_changes` gains an index
on (device_id, changed_at, id) for history pages (newest first). Devices stored before
this revision are active with no missed runs.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("retired_reason", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "device_missed_runs",
        sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("discovery", sa.String(256), nullable=False),
        sa.Column("missed_runs", sa.Integer(), nullable=False),
        sa.Column("last_run_id", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "discovery"),
    )
    op.create_index("ix_device_changes_device_id_changed_at_id", "device_changes", ["device_id", "changed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_device_changes_device_id_changed_at_id", table_name="device_changes")
    op.drop_table("device_missed_runs")
    # Not batch mode: on SQLite it copies `devices` and drops the original, and with
    # foreign keys on that DROP cascades to every port and history row. SQLite >= 3.35
    # drops a plain column in place (ALTER TABLE ... DROP COLUMN), as PostgreSQL does.
    op.drop_column("devices", "retired_reason")
    op.drop_column("devices", "retired_at")
