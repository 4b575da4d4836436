"""Reading the inventory, and the row <-> record conversions the writer shares.

Reads take no lock: on PostgreSQL every statement sees committed data; on SQLite (WAL)
readers never wait for the writer. A device and its ports are read by two statements, so a
reader may see a device a commit is still writing without its newest ports; the next read
has both.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from outpost import errors
from services.gateway.inventory.domain.device import Change, DeviceRecord, PortRecord
from services.gateway.inventory.domain.notes import DeviceNote
from services.gateway.inventory.domain.observation import PortKey
from services.gateway.inventory.store.models import device_changes, device_notes, device_ports, devices

DEFAULT_LIST_LIMIT = 1000
MAX_LIST_LIMIT = 10_000
HISTORY_LIMIT = 1000
"""GetDevice returns at most this many changes: the newest, oldest first."""
IN_CHUNK = 5000
"""Values per IN (...) list: well under both databases' bound-parameter limits."""


class InventoryStore:
    """The inventory's database: read connections, and write transactions for `commit_batch`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        # SQLite allows one writer; within this process writers queue here rather than
        # failing with "database is locked" (one process per SQLite file is the rule).
        self._sqlite_writer = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction committed on normal exit, rolled back on an exception."""
        async with self._sqlite_writer if self.sqlite else contextlib.nullcontext(), self.engine.begin() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()

    async def notes(self, device_ids: Sequence[str]) -> dict[str, list[DeviceNote]]:
        """The devices' notes (domain/notes.py), by device id; a device without notes is absent."""
        async with self.read() as conn:
            return await load_notes(conn, device_ids)

    async def list_devices(self, zone: str | None = None, limit: int = DEFAULT_LIST_LIMIT) -> list[DeviceRecord]:
        """Devices ordered by zone, then numerically by IP; at most `limit` (capped)."""
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        query = sa.select(devices).order_by(devices.c.zone, devices.c.ip_sort).limit(limit)
        if zone is not None:
            query = query.where(devices.c.zone == zone)
        async with self.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
            ports = await load_ports(conn, [row["id"] for row in rows])
        return [device_record(row, ports.get(row["id"], {})) for row in rows]

    async def get_device(self, ip: str, zone: str | None = None) -> tuple[DeviceRecord, list[Change]]:
        """One device and its history (oldest first). Without a zone the IP must be unique."""
        canonical = _canonical_ip(ip)
        query = sa.select(devices).where(devices.c.ip == canonical).order_by(devices.c.zone)
        if zone is not None:
            query = query.where(devices.c.zone == zone)
        async with self.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
            if not rows:
                where = f" in zone {zone!r}" if zone is not None else ""
                raise errors.NotFound(f"no device with ip {canonical}{where}")
            if len(rows) > 1:
                zones = ", ".join(row["zone"] or "''" for row in rows)
                raise errors.InvalidArgument(f"ip {canonical} exists in zones {zones}; pass --zone")
            row = rows[0]
            ports = await load_ports(conn, [row["id"]])
            history = (
                (
                    await conn.execute(
                        sa.select(device_changes)
                        .where(device_changes.c.device_id == row["id"])
                        .order_by(device_changes.c.id.desc())
                        .limit(HISTORY_LIMIT)
                    )
                )
                .mappings()
                .all()
            )
        return device_record(row, ports.get(row["id"], {})), [_change(c) for c in reversed(history)]


def _canonical_ip(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        raise errors.InvalidArgument(f"{ip[:64]!r} is not an IP address") from None


async def load_ports(conn: AsyncConnection, device_ids: Sequence[str]) -> dict[str, dict[PortKey, PortRecord]]:
    """Every port (open, closed or filtered) of these devices, by device id."""
    ports: dict[str, dict[PortKey, PortRecord]] = {}
    for chunk in chunked(device_ids, IN_CHUNK):
        rows = await conn.execute(sa.select(device_ports).where(device_ports.c.device_id.in_(chunk)))
        for row in rows.mappings():
            port = _port(row)
            ports.setdefault(row["device_id"], {})[port.key] = port
    return ports


async def load_notes(conn: AsyncConnection, device_ids: Sequence[str]) -> dict[str, list[DeviceNote]]:
    """The notes of these devices, by device id, by source then text."""
    notes: dict[str, list[DeviceNote]] = {}
    for chunk in chunked(device_ids, IN_CHUNK):
        rows = await conn.execute(
            sa.select(device_notes)
            .where(device_notes.c.device_id.in_(chunk))
            .order_by(device_notes.c.device_id, device_notes.c.source, device_notes.c.note)
        )
        for row in rows.mappings():
            note = DeviceNote(row["source"], row["note"], row["noted_at"], row["job_run_id"])
            notes.setdefault(row["device_id"], []).append(note)
    return notes


def chunked(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def ip_sort_key(ip: str) -> str:
    """Hex of the 16-byte IPv6 form (IPv4 mapped), so text order is numeric order."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv4Address):
        address = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + address.packed)
    return address.packed.hex()


def device_record(row: sa.RowMapping, ports: Mapping[PortKey, PortRecord]) -> DeviceRecord:
    return DeviceRecord(
        id=row["id"],
        zone=row["zone"],
        ip=row["ip"],
        hostname=row["hostname"],
        mac_addresses=tuple(row["mac_addresses"]),
        snmp_engine_id=row["snmp_engine_id"],
        facts=dict(row["facts"]),
        ports=dict(ports),
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        last_collector=row["last_collector"],
        last_job_run_id=row["last_job_run_id"],
    )


def device_row(device: DeviceRecord) -> dict[str, Any]:
    return {
        "id": device.id,
        "zone": device.zone,
        "ip": device.ip,
        "ip_sort": ip_sort_key(device.ip),
        "hostname": device.hostname,
        "mac_addresses": list(device.mac_addresses),
        "snmp_engine_id": device.snmp_engine_id,
        "facts": dict(device.facts),
        "first_seen": device.first_seen,
        "last_seen": device.last_seen,
        "last_collector": device.last_collector,
        "last_job_run_id": device.last_job_run_id,
    }


def port_row(device_id: str, port: PortRecord) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "protocol": port.protocol,
        "port": port.port,
        "service": port.service,
        "banner": port.banner,
        "details": dict(port.details),
        "first_seen": port.first_seen,
        "last_seen": port.last_seen,
        "open": port.open,
        "state": port.state,
    }


def change_row(change: Change) -> dict[str, Any]:
    return {
        "device_id": change.device_id,
        "field": change.field,
        "old_value": change.old_value,
        "new_value": change.new_value,
        "changed_at": change.changed_at,
        "job_run_id": change.job_run_id,
    }


def _port(row: sa.RowMapping) -> PortRecord:
    return PortRecord(
        protocol=row["protocol"],
        port=row["port"],
        service=row["service"],
        banner=row["banner"],
        details=dict(row["details"]),
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        state=row["state"],
    )


def _change(row: sa.RowMapping) -> Change:
    return Change(
        device_id=row["device_id"],
        field=row["field"],
        old_value=row["old_value"],
        new_value=row["new_value"],
        changed_at=row["changed_at"],
        job_run_id=row["job_run_id"],
    )
