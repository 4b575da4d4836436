"""The registry's first tables: server instance, collectors, their events, name conflicts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REVISION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "server_instance",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", _utc(), nullable=False),
    )
    op.create_table(
        "collectors",
        sa.Column("instance_uid", sa.String(256), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("zone", sa.String(256), nullable=False),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("password_verifier", sa.String(512), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("state_changed_by", sa.String(256), nullable=False),
        sa.Column("remote_address", sa.String(256), nullable=False),
        sa.Column("transport", sa.String(64), nullable=False),
        sa.Column("gateway_id", sa.String(256), nullable=False),
        sa.Column("session_id", sa.String(256), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("first_seen", _utc(), nullable=False),
        sa.Column("last_seen", _utc(), nullable=False),
        sa.Column("registered_at", _utc(), nullable=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_error_at", _utc(), nullable=True),
        sa.UniqueConstraint("name", name="uq_collectors_name"),
        sa.CheckConstraint("state IN ('pending', 'enabled', 'disabled')", name="ck_collectors_state"),
    )
    op.create_index("ix_collectors_state", "collectors", ["state"])
    op.create_index("ix_collectors_gateway_id", "collectors", ["gateway_id"])
    op.create_table(
        "collector_events",
        sa.Column("revision", _REVISION, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("instance_uid", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(256), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.CheckConstraint("kind IN ('state_changed', 'removed')", name="ck_collector_events_kind"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "name_conflicts",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("instance_uid", sa.String(256), primary_key=True),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("held_by_fingerprint", sa.String(128), nullable=False),
        sa.Column("remote_address", sa.String(256), nullable=False),
        sa.Column("first_seen", _utc(), nullable=False),
        sa.Column("last_seen", _utc(), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("name_conflicts")
    op.drop_table("collector_events")
    op.drop_index("ix_collectors_gateway_id", table_name="collectors")
    op.drop_index("ix_collectors_state", table_name="collectors")
    op.drop_table("collectors")
    op.drop_table("server_instance")
