"""The inventory's tables, as SQLAlchemy Core tables (the store writes them in bulk).

`services/gateway/migrations/versions/` creates exactly these; a change here needs a new
migration. On PostgreSQL they live in the `gateway` schema (chosen by `search_path`); on
SQLite in the gateway's own file. JSON columns are JSONB on PostgreSQL. MAC addresses are
looked up in `device_macs` (a (zone, mac) b-tree), not in the JSON.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from outpost.store_types import UtcDateTime

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
CHANGE_ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""BIGINT on PostgreSQL; INTEGER on SQLite, where only that is a rowid alias."""


metadata = sa.MetaData()

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("zone", sa.String(256), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("ip_sort", sa.String(32), nullable=False),
    sa.Column("hostname", sa.Text(), nullable=False),
    sa.Column("mac_addresses", JSON_TYPE, nullable=False),
    sa.Column("snmp_engine_id", sa.String(256), nullable=False),
    sa.Column("facts", JSON_TYPE, nullable=False),
    sa.Column("first_seen", UtcDateTime(), nullable=False),
    sa.Column("last_seen", UtcDateTime(), nullable=False),
    sa.Column("last_collector", sa.String(256), nullable=False),
    sa.Column("last_job_run_id", sa.String(256), nullable=False),
    sa.Column("retired_at", UtcDateTime(), nullable=True),
    sa.Column("retired_reason", sa.Text(), nullable=False, server_default=""),
    sa.UniqueConstraint("zone", "ip", name="uq_devices_zone_ip"),
    sa.Index("ix_devices_zone_ip_sort_id", "zone", "ip_sort", "id"),
    sa.Index("ix_devices_zone_snmp_engine_id", "zone", "snmp_engine_id"),
    sa.Index("ix_devices_ip", "ip"),
)
"""`ip_sort` orders addresses numerically (hex of the 16-byte IPv6 form); the store sets it.
(zone, ip_sort, id) is the order `devices list` pages in (keyset, ADR 0027).
`retired_at` is set while the retirement rule holds the device retired (`retired_reason` says
which rule: "missed 5 runs", "not seen for 30 days"); a sighting clears both."""

device_macs = sa.Table(
    "device_macs",
    metadata,
    sa.Column("zone", sa.String(256), primary_key=True),
    sa.Column("mac", sa.String(32), primary_key=True),
    sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Index("ix_device_macs_device_id", "device_id"),
)
"""The MAC addresses of each device (`devices.mac_addresses`, normalized), keyed by zone, so a
batch finds the devices carrying its MACs with a b-tree lookup instead of reading the zone.
Written in the same transaction as the device; a MAC may (briefly) be on two devices."""

device_ports = sa.Table(
    "device_ports",
    metadata,
    sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("protocol", sa.String(16), primary_key=True),
    sa.Column("port", sa.Integer(), primary_key=True),
    sa.Column("service", sa.String(1024), nullable=False),
    sa.Column("banner", sa.Text(), nullable=False),
    sa.Column("details", JSON_TYPE, nullable=False),
    sa.Column("first_seen", UtcDateTime(), nullable=False),
    sa.Column("last_seen", UtcDateTime(), nullable=False),
    sa.Column("open", sa.Boolean(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="open"),
)
"""`state` is "open", "closed" or "filtered"; `open` (state = "open") stays for readers that
predate states (a gateway replica not yet upgraded, a downgrade)."""

device_changes = sa.Table(
    "device_changes",
    metadata,
    sa.Column("id", CHANGE_ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    sa.Column("field", sa.String(1024), nullable=False),
    sa.Column("old_value", sa.Text(), nullable=False),
    sa.Column("new_value", sa.Text(), nullable=False),
    sa.Column("changed_at", UtcDateTime(), nullable=False),
    sa.Column("job_run_id", sa.String(256), nullable=False),
    sa.Index("ix_device_changes_device_id_id", "device_id", "id"),
    sa.Index("ix_device_changes_device_id_changed_at_id", "device_id", "changed_at", "id"),
)
"""History pages walk (changed_at, id) newest first: the second index serves that keyset."""

device_missed_runs = sa.Table(
    "device_missed_runs",
    metadata,
    sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("discovery", sa.String(256), primary_key=True),
    sa.Column("missed_runs", sa.Integer(), nullable=False),
    sa.Column("last_run_id", sa.String(256), nullable=False),
)
"""Per device and discovery: the discovery's runs in a row that covered the device and did not
report it. `last_run_id` is the run that last reset or counted the row, so a run's end is
counted once however often it is reported."""

device_notes = sa.Table(
    "device_notes",
    metadata,
    sa.Column("device_id", sa.String(32), sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("note", sa.Text(), primary_key=True),
    sa.Column("noted_at", UtcDateTime(), nullable=False),
    sa.Column("job_run_id", sa.String(256), nullable=False),
)
"""Per device and source (the probe), the newest notes (domain/notes.py): not history."""

ingested_batches = sa.Table(
    "ingested_batches",
    metadata,
    sa.Column("collector_instance_uid", sa.String(256), primary_key=True),
    sa.Column("job_run_id", sa.String(256), primary_key=True),
    sa.Column("attempt", sa.BigInteger(), primary_key=True, autoincrement=False, server_default="0"),
    sa.Column("sequence", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("committed_at", UtcDateTime(), nullable=False),
    sa.Column("devices", sa.Integer(), nullable=False),
    sa.Column("stale_observations", sa.Integer(), nullable=False, server_default="0"),
    sa.Index("ix_ingested_batches_committed_at", "committed_at"),
    sa.Index(
        "ix_ingested_batches_job_run_id_stale",
        "job_run_id",
        postgresql_where=sa.text("stale_observations > 0"),
        sqlite_where=sa.text("stale_observations > 0"),
    ),
)
"""One row per committed batch: its identity (collector, run, attempt, sequence) is the dedup
key, so a resend is never a second commit and a run's next attempt is not mistaken for one.
`stale_observations`: how many of its observations were skipped as stale (summed per run)."""
