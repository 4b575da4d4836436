"""A (zone, mac) -> device table, so ingest's MAC lookup does not read the zone (issue 13 item 3).

Before: a batch found devices by MAC with `mac_addresses ?| array[...]` on JSONB (PostgreSQL)
or `json_each` (SQLite). PostgreSQL cannot estimate `?|` and read the zone's devices through
the zone's b-tree instead of the GIN index, so every batch cost O(devices in the zone)
(about 20 ms at 13,000 devices; docs/benchmarks.md). `device_macs` holds each device's
normalized MACs with the zone, primary key (zone, mac, device_id): the lookup is an index
range scan. The store writes it with the device, in the same transaction. Backfilled here
from `devices.mac_addresses`; the GIN index has no reader left and is dropped.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_macs",
        sa.Column("zone", sa.String(256), nullable=False),
        sa.Column("mac", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.PrimaryKeyConstraint("zone", "mac", "device_id"),
    )
    op.create_index("ix_device_macs_device_id", "device_macs", ["device_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO device_macs (zone, mac, device_id) "
            "SELECT DISTINCT d.zone, m.mac, d.id FROM devices d, jsonb_array_elements_text(d.mac_addresses) AS m(mac) "
            "WHERE m.mac <> ''"
        )
        op.drop_index("ix_devices_mac_addresses", table_name="devices")
    else:
        op.execute(
            "INSERT OR IGNORE INTO device_macs (zone, mac, device_id) "
            "SELECT d.zone, m.value, d.id FROM devices d, json_each(d.mac_addresses) AS m WHERE m.value <> ''"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_devices_mac_addresses", "devices", ["mac_addresses"], postgresql_using="gin")
    op.drop_index("ix_device_macs_device_id", table_name="device_macs")
    op.drop_table("device_macs")
