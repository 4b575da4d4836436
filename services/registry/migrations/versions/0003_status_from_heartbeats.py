"""Status from heartbeats (ADR 0010): clock skew, spool, report times; handshake refusals.

The spool status is one JSON column, not nine: it is the collector's own report (the
agent protocol's `SpoolStatus`), written and read whole, never filtered or aggregated in
SQL; as JSON it follows that message as it grows without a registry migration each
time, and NULL says "never reported" (collectors before ADR 0010) apart from an empty
spool. `clock_skew_ms` and the times are plain columns: they are compared in SQL
(`reported_at` by the complete-report sweep) or shown on their own.

`state_changed_at` is filled from the change log, which has kept the time of every
state change since 0001, so `explain` can say when an existing collector was disabled.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.add_column(sa.Column("state_changed_at", _utc(), nullable=True))
        batch.add_column(sa.Column("reported_at", _utc(), nullable=True))
        batch.add_column(sa.Column("clock_skew_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("spool", sa.JSON(none_as_null=True), nullable=True))
    op.execute(
        "UPDATE collectors SET state_changed_at = "
        "(SELECT e.created_at FROM collector_events e WHERE e.revision = collectors.revision)"
    )
    op.create_table(
        "handshake_refusals",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("instance_uid", sa.String(256), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("remote_address", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("first_at", _utc(), nullable=False),
        sa.Column("last_at", _utc(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("name", "instance_uid", "reason", name="uq_handshake_refusals_identity"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_handshake_refusals_instance_uid", "handshake_refusals", ["instance_uid"])
    op.create_index("ix_handshake_refusals_last_at", "handshake_refusals", ["last_at"])


def downgrade() -> None:
    op.drop_index("ix_handshake_refusals_last_at", table_name="handshake_refusals")
    op.drop_index("ix_handshake_refusals_instance_uid", table_name="handshake_refusals")
    op.drop_table("handshake_refusals")
    with op.batch_alter_table("collectors") as batch:
        batch.drop_column("spool")
        batch.drop_column("clock_skew_ms")
        batch.drop_column("reported_at")
        batch.drop_column("state_changed_at")
