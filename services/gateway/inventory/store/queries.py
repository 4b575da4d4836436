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

from outpost import errors, paging
from services.gateway.inventory.domain.device import Change, DeviceRecord, PortRecord
from services.gateway.inventory.domain.device_filter import DeviceFilter
from services.gateway.inventory.domain.notes import DeviceNote
from services.gateway.inventory.domain.observation import PortKey
from services.gateway.inventory.store import history
from services.gateway.inventory.store.models import device_missed_runs, device_notes, device_ports, devices

DEVICES_LIST = "devices"
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

    async def list_devices(
        self, where: DeviceFilter | None = None, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[DeviceRecord], str]:
        """A page of devices ordered by zone, numerically by IP, then id; and the next token.

        Keyset pages (`outpost.paging`): the (zone, ip_sort, id) index serves every page with
        one range scan, however deep. Retired devices are left out unless `include_retired`.
        """
        where = where or DeviceFilter()
        filters = where.digest_fields()
        size = paging.page_size(page_size)
        order = (devices.c.zone, devices.c.ip_sort, devices.c.id)
        query = sa.select(devices).where(*_device_conditions(where)).order_by(*order).limit(size + 1)
        if page_token:
            position = paging.decode_token(page_token, DEVICES_LIST, filters, (str, str, str))
            query = query.where(sa.tuple_(*order) > sa.tuple_(*(sa.literal(v) for v in position)))
        async with self.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
            page, next_token = paging.page_from(
                rows, size, DEVICES_LIST, filters, lambda row: (row["zone"], row["ip_sort"], row["id"])
            )
            ids = [row["id"] for row in page]
            ports = await load_ports(conn, ids)
            missed = await load_missed_runs(conn, ids)
        return [device_record(row, ports.get(row["id"], {}), missed.get(row["id"], 0)) for row in page], next_token

    async def get_device(
        self, ip: str, zone: str | None = None, *, history_page_size: int = 0, history_page_token: str = ""
    ) -> tuple[DeviceRecord, list[Change], str]:
        """One device, a page of its history (the newest `history_page_size`, or those after
        the token; listed oldest first) and the token of the next, older page ("" if none).

        Without a zone the IP must be unique.
        """
        size = history.page_size(history_page_size, history.GET_DEVICE_DEFAULT_PAGE_SIZE)
        async with self.read() as conn:
            row = await find_device_row(conn, ip, zone)
            ports = await load_ports(conn, [row["id"]])
            missed = await load_missed_runs(conn, [row["id"]])
            page, next_token = await history.read_page(conn, row["id"], size, history_page_token)
        record = device_record(row, ports.get(row["id"], {}), missed.get(row["id"], 0))
        return record, list(reversed(page)), next_token

    async def list_device_history(
        self, ip: str, zone: str | None = None, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Change], str]:
        """A page of one device's history, newest first, and the next page's token ("" if none)."""
        size = history.page_size(page_size, history.DEFAULT_PAGE_SIZE)
        async with self.read() as conn:
            row = await find_device_row(conn, ip, zone)
            return await history.read_page(conn, row["id"], size, page_token)


def _device_conditions(where: DeviceFilter) -> list[sa.ColumnElement[bool]]:
    """The WHERE terms of a filter; port and service filters look at open ports only."""
    conditions: list[sa.ColumnElement[bool]] = []
    if where.zone is not None:
        conditions.append(devices.c.zone == where.zone)
    if not where.include_retired:
        conditions.append(devices.c.retired_at.is_(None))
    if where.cidr is not None:
        # ip_sort is the hex of the 16-byte form, so a network is one range of it.
        low = ip_sort_key(str(where.cidr.network_address))
        high = ip_sort_key(str(where.cidr.broadcast_address))
        conditions.append(devices.c.ip_sort.between(low, high))
    if where.seen_since is not None:
        conditions.append(devices.c.last_seen >= where.seen_since)
    # Two filters, two conditions: "port 22 open" and "some open port runs http" may be
    # different ports of the device.
    if where.port:
        conditions.append(_open_port(device_ports.c.port == where.port))
    if where.service:
        conditions.append(_open_port(sa.func.lower(device_ports.c.service) == where.service))
    return conditions


def _open_port(condition: sa.ColumnElement[bool]) -> sa.Exists:
    return (
        sa.select(sa.literal(1))
        .where(device_ports.c.device_id == devices.c.id, device_ports.c.state == "open", condition)
        .exists()
    )


async def find_device_row(conn: AsyncConnection, ip: str, zone: str | None) -> sa.RowMapping:
    """The device at `ip` (in `zone`); NotFound, or InvalidArgument when the IP is in several zones."""
    canonical = _canonical_ip(ip)
    query = sa.select(devices).where(devices.c.ip == canonical).order_by(devices.c.zone)
    if zone is not None:
        query = query.where(devices.c.zone == zone)
    rows = (await conn.execute(query)).mappings().all()
    if not rows:
        where = f" in zone {zone!r}" if zone is not None else ""
        raise errors.NotFound(f"no device with ip {canonical}{where}")
    if len(rows) > 1:
        zones = ", ".join(row["zone"] or "''" for row in rows)
        raise errors.InvalidArgument(f"ip {canonical} exists in zones {zones}; pass --zone")
    return rows[0]


async def load_missed_runs(conn: AsyncConnection, device_ids: Sequence[str]) -> dict[str, int]:
    """Each device's missed runs: the smallest count over the discoveries that scan it."""
    missed: dict[str, int] = {}
    for chunk in chunked(device_ids, IN_CHUNK):
        rows = await conn.execute(
            sa.select(device_missed_runs.c.device_id, sa.func.min(device_missed_runs.c.missed_runs))
            .where(device_missed_runs.c.device_id.in_(chunk))
            .group_by(device_missed_runs.c.device_id)
        )
        missed.update((device_id, int(count)) for device_id, count in rows)
    return missed


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
            port = port_record(row)
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
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and int(p) <= 255 for p in parts):
        # Dotted quad (every stored IP is canonical): the same hex without ipaddress's parse.
        return "00000000000000000000ffff" + "".join(f"{int(p):02x}" for p in parts)
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv4Address):
        address = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + address.packed)
    return address.packed.hex()


def device_record(row: Mapping[Any, Any], ports: Mapping[PortKey, PortRecord], missed_runs: int = 0) -> DeviceRecord:
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
        retired_at=row["retired_at"],
        retired_reason=row["retired_reason"],
        missed_runs=missed_runs,
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
        "retired_at": device.retired_at,
        "retired_reason": device.retired_reason,
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


def port_record(row: Mapping[Any, Any]) -> PortRecord:
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
