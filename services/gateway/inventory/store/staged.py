"""PostgreSQL's write of a planned batch: binary COPY into staging tables, one upsert per table.

`commit.commit_batch` runs this inside its transaction (after the dedup claim and the zone
lock) when the store is PostgreSQL; SQLite keeps the statements of `commit._write`. Both
write the same plan (`domain.batch.plan_batch` decides every value), so the inventory is
the same row for row (tests/integration/test_inventory_staged.py). ADR 0032 says why.

Why: through SQLAlchemy every row of every multi-row INSERT went through bind processing
(one JSON encode per JSON value, one type processor per column) and a page of bound
parameters; COPY sends the rows in PostgreSQL's binary format over the same connection,
and the upsert then runs set-wise in the server.

- **Lookup** (`load_devices`): one statement finds the zone's devices at the batch's IPs,
  carrying its SNMP engine ids, or its MACs through `device_macs`; each branch an index
  scan on its (zone, ...) b-tree, the MAC carriers as an init plan (`ARRAY(SELECT ...)`)
  so the planner cannot turn them into a join over the zone. One more reads their ports.
  Arrays are bound as single parameters: one prepared statement whatever the batch size.
- **Staging**: two temporary tables per connection, `outpost_stage_devices` and
  `outpost_stage_ports`, shaped as `SELECT <the model's columns> FROM <table> WITH NO
  DATA` and `ON COMMIT DELETE ROWS`: made by the first commit on a server session, emptied
  by every commit and rollback, invisible to other sessions. Every commit says `CREATE
  TEMP TABLE IF NOT EXISTS` (one round trip) rather than trusting a flag on the pooled
  connection: a pooler in front of PostgreSQL may hand the next transaction another server
  session, and a missing staging table would fail every commit. Named apart from the real
  tables: `pg_temp` comes first in the search path.
- **Write**, in this order (the foreign keys and the `(zone, ip)` key need it): moved
  devices parked on a placeholder IP; COPY devices and ports to staging; one
  `INSERT ... SELECT ... ON CONFLICT DO UPDATE` each for devices and for ports; replaced
  `device_macs` rows deleted, new ones COPYed; history COPYed straight into
  `device_changes` (append-only: no conflict to handle); replaced notes deleted, new ones
  COPYed into `device_notes`; the reporting discovery's missed-runs counters reset.

Only the raw asyncpg connection of the SQLAlchemy transaction is used, so all of it
commits or rolls back with the batch's identity (ack after commit is unchanged).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.inventory.domain.batch import BatchPlan
from services.gateway.inventory.domain.device import Change, DeviceRecord, PortRecord
from services.gateway.inventory.domain.observation import DeviceObservation, normalize_engine_id, normalize_macs
from services.gateway.inventory.store.models import device_changes, device_notes, device_ports, devices
from services.gateway.inventory.store.queries import device_record, ip_sort_key, port_record

STAGE_DEVICES = "outpost_stage_devices"
STAGE_PORTS = "outpost_stage_ports"

DEVICE_COLUMNS = tuple(c.name for c in devices.c)
PORT_COLUMNS = tuple(c.name for c in device_ports.c)
PORT_KEY = ("device_id", "protocol", "port")
CHANGE_COLUMNS = ("device_id", "field", "old_value", "new_value", "changed_at", "job_run_id")
NOTE_COLUMNS = tuple(c.name for c in device_notes.c)


def _columns(names: Iterable[str]) -> str:
    return ", ".join(names)


def _upsert_from(table: str, stage: str, columns: Sequence[str], key: Sequence[str]) -> str:
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    # Names from this module's constants and the models, never from input.
    return (
        f"INSERT INTO {table} ({_columns(columns)}) SELECT {_columns(columns)} FROM {stage} "  # noqa: S608
        f"ON CONFLICT ({_columns(key)}) DO UPDATE SET {updates}"
    )


CREATE_STAGING = ";\n".join(
    f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS "  # noqa: S608
    f"AS SELECT {_columns(columns)} FROM {table} WITH NO DATA"
    for stage, table, columns in (
        (STAGE_DEVICES, "devices", DEVICE_COLUMNS),
        (STAGE_PORTS, "device_ports", PORT_COLUMNS),
    )
)
UPSERT_STAGED = ";\n".join(
    (
        _upsert_from("devices", STAGE_DEVICES, DEVICE_COLUMNS, ("id",)),
        _upsert_from("device_ports", STAGE_PORTS, PORT_COLUMNS, PORT_KEY),
    )
)
"""No parameters, so both go in one round trip (the simple query protocol)."""

FIND_DEVICES = """
SELECT * FROM devices WHERE zone = $1 AND ip = ANY($2::text[])
UNION ALL
SELECT * FROM devices WHERE zone = $1 AND snmp_engine_id = ANY($3::text[])
UNION ALL
SELECT * FROM devices
 WHERE zone = $1 AND id = ANY(ARRAY(SELECT device_id FROM device_macs WHERE zone = $1 AND mac = ANY($4::text[])))
"""
FIND_PORTS = "SELECT * FROM device_ports WHERE device_id = ANY($1::text[])"
PARK_MOVED = "UPDATE devices SET ip = '~' || id WHERE id = ANY($1::text[])"
DROP_MACS = "DELETE FROM device_macs WHERE device_id = ANY($1::text[])"
DROP_NOTES = """
DELETE FROM device_notes AS n USING unnest($1::text[], $2::text[]) AS r(device_id, source)
 WHERE n.device_id = r.device_id AND n.source = r.source
"""
MARK_SEEN = """
INSERT INTO device_missed_runs (device_id, discovery, missed_runs, last_run_id)
SELECT device_id, $2, 0, $3 FROM unnest($1::text[]) AS seen(device_id)
ON CONFLICT (device_id, discovery) DO UPDATE SET missed_runs = 0, last_run_id = EXCLUDED.last_run_id
"""


async def driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`, in the transaction `conn` began."""
    fairy = await conn.get_raw_connection()
    return fairy.driver_connection


async def load_devices(raw: Any, zone: str, observations: Sequence[DeviceObservation]) -> list[DeviceRecord]:
    """The zone's devices at the batch's IPs or carrying its MACs or engine ids, with their ports."""
    ips = sorted({o.ip for o in observations})
    macs = sorted({mac for o in observations for mac in normalize_macs(o.mac_addresses)})
    engines = sorted({e for o in observations if o.snmp is not None and (e := normalize_engine_id(o.snmp.engine_id))})
    rows: dict[str, Any] = {}
    for row in await raw.fetch(FIND_DEVICES, zone, ips, engines, macs):
        rows.setdefault(row["id"], row)
    ports: dict[str, dict[Any, Any]] = {}
    if rows:
        for row in await raw.fetch(FIND_PORTS, list(rows)):
            port = port_record(row)
            ports.setdefault(row["device_id"], {})[port.key] = port
    return [device_record(row, ports.get(device_id, {})) for device_id, row in rows.items()]


async def write(
    raw: Any,
    plan: BatchPlan,
    *,
    stored_macs: Mapping[str, tuple[str, ...]],
    seen: Sequence[str],
    discovery: str,
    job_run_id: str,
) -> None:
    """Write `plan` (see the module docstring)."""
    await raw.execute(CREATE_STAGING)
    if plan.moved:
        await raw.execute(PARK_MOVED, plan.moved)
    if plan.devices:
        await raw.copy_records_to_table(
            STAGE_DEVICES, records=[_device_record(d) for d in plan.devices], columns=DEVICE_COLUMNS
        )
    if plan.ports:
        await raw.copy_records_to_table(
            STAGE_PORTS, records=[_port_record(i, p) for i, p in plan.ports], columns=PORT_COLUMNS
        )
    if plan.devices or plan.ports:
        await raw.execute(UPSERT_STAGED)
    await _write_macs(raw, plan.devices, stored_macs)
    if plan.changes:
        await raw.copy_records_to_table(
            "device_changes",
            records=[_change_record(c) for c in plan.changes],
            columns=CHANGE_COLUMNS,
        )
    await _write_notes(raw, plan)
    if discovery and seen:
        await raw.execute(MARK_SEEN, list(seen), discovery, job_run_id)


async def _write_macs(raw: Any, written: Sequence[DeviceRecord], stored_macs: Mapping[str, tuple[str, ...]]) -> None:
    """`device_macs` equal to each written device's MACs: the rows of those that changed replaced."""
    changed = [d for d in written if tuple(d.mac_addresses) != stored_macs.get(d.id, ())]
    if dropped := [d.id for d in changed if d.id in stored_macs]:
        await raw.execute(DROP_MACS, dropped)
    if rows := [(d.zone, mac, d.id) for d in changed for mac in sorted(set(d.mac_addresses))]:
        await raw.copy_records_to_table("device_macs", records=rows, columns=("zone", "mac", "device_id"))


async def _write_notes(raw: Any, plan: BatchPlan) -> None:
    """Drop the notes of the sources each device's update speaks for, then store the new ones."""
    pairs = [(u.device_id, source) for u in plan.notes for source in sorted(u.replaced)]
    if pairs:
        await raw.execute(DROP_NOTES, [p[0] for p in pairs], [p[1] for p in pairs])
    rows = [
        (update.device_id, note.source, note.text, note.noted_at, note.job_run_id)
        for update in plan.notes
        for note in update.notes
    ]
    if rows:
        await raw.copy_records_to_table("device_notes", records=rows, columns=NOTE_COLUMNS)


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _json(value: Any) -> str:
    # The engine's jsonb codec (SQLAlchemy's asyncpg dialect) takes JSON text.
    return _ENCODER.encode(value) if value else ("{}" if isinstance(value, dict) else "[]")


def _device_record(device: DeviceRecord) -> tuple[Any, ...]:
    return (
        device.id,
        device.zone,
        device.ip,
        ip_sort_key(device.ip),
        device.hostname,
        _json(list(device.mac_addresses)),
        device.snmp_engine_id,
        _json(dict(device.facts)),
        device.first_seen,
        device.last_seen,
        device.last_collector,
        device.last_job_run_id,
        device.retired_at,
        device.retired_reason,
    )


def _change_record(change: Change) -> tuple[Any, ...]:
    return (change.device_id, change.field, change.old_value, change.new_value, change.changed_at, change.job_run_id)


def _port_record(device_id: str, port: PortRecord) -> tuple[Any, ...]:
    return (
        device_id,
        port.protocol,
        port.port,
        port.service,
        port.banner,
        _json(dict(port.details)),
        port.first_seen,
        port.last_seen,
        port.open,
        port.state,
    )


_EXPECTED = (
    (
        DEVICE_COLUMNS,
        (
            "id",
            "zone",
            "ip",
            "ip_sort",
            "hostname",
            "mac_addresses",
            "snmp_engine_id",
            "facts",
            "first_seen",
            "last_seen",
            "last_collector",
            "last_job_run_id",
            "retired_at",
            "retired_reason",
        ),
    ),
    (
        PORT_COLUMNS,
        ("device_id", "protocol", "port", "service", "banner", "details", "first_seen", "last_seen", "open", "state"),
    ),
    (NOTE_COLUMNS, ("device_id", "source", "note", "noted_at", "job_run_id")),
)
if any(actual != expected for actual, expected in _EXPECTED) or set(CHANGE_COLUMNS) != {
    c.name for c in device_changes.c if c.name != "id"
}:
    # The record tuples above follow the models' column order: a new column goes there too.
    raise RuntimeError("store/staged.py is out of step with store/models.py")
