"""Each discovery's SNMP and SSH probe ports (0 = the standard 161 and 22).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not null with a server default: discoveries stored before this revision get 0, the
    # standard ports (a run's snapshot without them reads as 0 too, see `from_snapshot`).
    # The default is the literal "0", not an expression: that keeps SQLite at a plain
    # ADD COLUMN, where an expression would make batch mode copy the table, and dropping the
    # old copy fails on the schedules' foreign key (PRAGMA foreign_keys is on).
    with op.batch_alter_table("discoveries") as batch:
        batch.add_column(sa.Column("snmp_port", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ssh_port", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), not batch mode: its table copy trips the same foreign key.
    op.drop_column("discoveries", "ssh_port")
    op.drop_column("discoveries", "snmp_port")
