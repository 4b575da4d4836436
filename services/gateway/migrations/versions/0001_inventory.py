"""The inventory: devices, their ports, their history, and the committed batches.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_CHANGE_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("zone", sa.String(256), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("ip_sort", sa.String(32), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("mac_addresses", _JSON, nullable=False),
        sa.Column("snmp_engine_id", sa.String(256), nullable=False),
        sa.Column("facts", _JSON, nullable=False),
        sa.Column("first_seen", _utc(), nullable=False),
        sa.Column("last_seen", _utc(), nullable=False),
        sa.Column("last_collector", sa.String(256), nullable=False),
        sa.Column("last_job_run_id", sa.String(256), nullable=False),
        sa.UniqueConstraint("zone", "ip", name="uq_devices_zone_ip"),
    )
    op.create_index("ix_devices_zone_ip_sort", "devices", ["zone", "ip_sort"])
    op.create_index("ix_devices_zone_snmp_engine_id", "devices", ["zone", "snmp_engine_id"])
    op.create_index("ix_devices_ip", "devices", ["ip"])
    if op.get_bind().dialect.name == "postgresql":
        # For the MAC lookup (`mac_addresses ?| array[...]`); SQLite scans the zone instead.
        op.create_index("ix_devices_mac_addresses", "devices", ["mac_addresses"], postgresql_using="gin")
    op.create_table(
        "device_ports",
        sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("protocol", sa.String(16), primary_key=True),
        sa.Column("port", sa.Integer(), primary_key=True),
        sa.Column("service", sa.String(1024), nullable=False),
        sa.Column("banner", sa.Text(), nullable=False),
        sa.Column("details", _JSON, nullable=False),
        sa.Column("first_seen", _utc(), nullable=False),
        sa.Column("last_seen", _utc(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "device_changes",
        sa.Column("id", _CHANGE_ID, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("field", sa.String(1024), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=False),
        sa.Column("new_value", sa.Text(), nullable=False),
        sa.Column("changed_at", _utc(), nullable=False),
        sa.Column("job_run_id", sa.String(256), nullable=False),
    )
    op.create_index("ix_device_changes_device_id_id", "device_changes", ["device_id", "id"])
    op.create_table(
        "ingested_batches",
        sa.Column("collector_instance_uid", sa.String(256), primary_key=True),
        sa.Column("job_run_id", sa.String(256), primary_key=True),
        sa.Column("sequence", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("committed_at", _utc(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
    )
    op.create_index("ix_ingested_batches_committed_at", "ingested_batches", ["committed_at"])


def downgrade() -> None:
    op.drop_index("ix_ingested_batches_committed_at", table_name="ingested_batches")
    op.drop_table("ingested_batches")
    op.drop_index("ix_device_changes_device_id_id", table_name="device_changes")
    op.drop_table("device_changes")
    op.drop_table("device_ports")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_devices_mac_addresses", table_name="devices")
    op.drop_index("ix_devices_ip", table_name="devices")
    op.drop_index("ix_devices_zone_snmp_engine_id", table_name="devices")
    op.drop_index("ix_devices_zone_ip_sort", table_name="devices")
    op.drop_table("devices")
