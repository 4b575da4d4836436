"""Commit one result batch: dedup by its identity, merge, and write in bulk, in one transaction.

The transaction, step by step:

1. Insert the batch's identity (collector instance uid, job run id, attempt, sequence)
   into `ingested_batches` with ON CONFLICT DO NOTHING. If the row already existed the batch
   was committed before (a resend after a lost ack): nothing else is written and the
   result says `duplicate`. Two copies arriving at once serialize on that key in the
   database; the second finds the first's row once it commits.
2. Take the zone's write lock: on PostgreSQL a transaction-scoped advisory lock on a hash
   of the zone; on SQLite the database's single writer (queued in-process). Commits for
   one zone are serialized, for different zones they run in parallel. Row locks and
   unique keys alone would not do: a device can be matched by its MAC address at an IP
   the other transaction never touched, and two commits would each create it.
3. Load every stored device of the zone the batch may touch (at its IPs, carrying its SNMP
   engine ids, or its MAC addresses through `device_macs`: one b-tree lookup each), and
   their ports.
4. Plan in memory (`domain.batch.plan_batch`): identities, merges, changes; a retired
   device the batch reports is un-retired (`domain.lifecycle`).
5. Write with bulk statements: park moved devices on a placeholder IP (one UPDATE), upsert
   devices and ports with multi-row INSERT ... ON CONFLICT DO UPDATE, insert the history
   with multi-row INSERTs, replace the notes of the sources the batch speaks for (one
   DELETE per distinct set of sources, one multi-row INSERT). Each is compiled once and sent as multi-row pages by
   SQLAlchemy's "insertmanyvalues" (which needs the RETURNING clause they carry), a page
   as large as the databases' bound-parameter limit allows (about 2,700 devices or 3,600
   ports). Devices whose MAC addresses changed get their `device_macs` rows replaced.
   The reporting discovery's missed-runs counters of these devices go to 0.

   That is SQLite's path. PostgreSQL does steps 3 and 5 through the transaction's raw
   asyncpg connection (`store.staged`, ADR 0032): one lookup statement, binary COPY into
   staging tables and one INSERT ... SELECT ... ON CONFLICT per table, the same plan.

6. If the plan skipped observations as stale, record their number on the batch's row and
   sum the run's (`run_stale_total`, for the scheduler's `JobRun.observations_stale`).

Failure is all or nothing: an exception rolls everything back, including the batch's
identity, so the caller must not ack and the collector sends the batch again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from outpost import errors
from services.gateway.inventory.domain.batch import BatchPlan, StaleObservation, plan_batch
from services.gateway.inventory.domain.device import DeviceRecord, Sighting
from services.gateway.inventory.domain.lifecycle import reported_device_ids, unretire_seen
from services.gateway.inventory.domain.observation import DeviceObservation, normalize_engine_id, normalize_macs
from services.gateway.inventory.store import staged
from services.gateway.inventory.store.missed_runs import mark_seen
from services.gateway.inventory.store.models import (
    device_changes,
    device_macs,
    device_notes,
    device_ports,
    devices,
    ingested_batches,
)
from services.gateway.inventory.store.queries import (
    IN_CHUNK,
    InventoryStore,
    change_row,
    chunked,
    device_record,
    device_row,
    load_ports,
    port_row,
)

_BULK = {"insertmanyvalues_page_size": 5000}
"""Rows per multi-row statement; SQLAlchemy shrinks a page to fit the parameter limit."""
ZONE_LOCK_NAMESPACE = 0x6F75_7470
"""First key of pg_advisory_xact_lock(int, int) for zone locks ("outp"); the second is the zone's hash."""
MAX_SEQUENCE = 2**63 - 1
MAX_ATTEMPT = 2**32 - 1


@dataclass(frozen=True)
class CommitResult:
    duplicate: bool
    """The batch had been committed before; nothing was written."""
    devices: int
    """Devices created or updated."""
    changes: int
    """History entries recorded."""
    stale: int = 0
    """Observations skipped because another job run had already recorded newer ones."""
    skipped: tuple[StaleObservation, ...] = ()
    """Those observations, one entry each (for the log)."""
    run_stale_total: int = 0
    """When `stale` > 0: the run's stale observations over all its committed batches."""


async def commit_batch(
    store: InventoryStore,
    *,
    collector_instance_uid: str,
    collector_name: str,
    zone: str,
    job_run_id: str,
    attempt: int,
    sequence: int,
    scanned_ports: Collection[int],
    observations: Sequence[DeviceObservation],
    observed_at: datetime,
    now: datetime | None = None,
    probes: Collection[str] | None = None,
    discovery: str = "",
) -> CommitResult:
    """Commit one batch exactly once (see the module docstring); raises on failure, then retry.

    `zone` is the collector's zone as the registry knows it; `attempt` the run's attempt the
    batch belongs to (0 from collectors that predate attempts); `scanned_ports` the TCP
    ports of the job run's assignment (empty when unknown: then no port is found closed);
    `probes` the probes the run ran (None when unknown: then only the sources a note names
    have their notes replaced). `discovery` names the run's discovery: the devices it
    reports have missed none of its runs (a retired one is un-retired). Raises
    `errors.InvalidArgument` for an identity that can never be stored.
    """
    if not collector_instance_uid or not job_run_id:
        raise errors.InvalidArgument("a result batch needs a collector instance uid and a job run id")
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise errors.InvalidArgument(f"result batch sequence {sequence} is out of range")
    if not 0 <= attempt <= MAX_ATTEMPT:
        raise errors.InvalidArgument(f"result batch attempt {attempt} is out of range")
    if observed_at.tzinfo is None:
        raise ValueError("observed_at must be timezone-aware")
    sighting = Sighting(zone, collector_name, job_run_id, observed_at, frozenset(scanned_ports))
    insert = _insert_for(store)
    async with store.write() as conn:
        claimed = await conn.execute(
            insert(ingested_batches)
            .values(
                collector_instance_uid=collector_instance_uid,
                job_run_id=job_run_id,
                attempt=attempt,
                sequence=sequence,
                committed_at=now or datetime.now(UTC),
                devices=len(observations),
            )
            .on_conflict_do_nothing()
            .returning(ingested_batches.c.sequence)
        )
        if claimed.first() is None:
            return CommitResult(duplicate=True, devices=0, changes=0)
        if not observations:
            return CommitResult(duplicate=False, devices=0, changes=0)
        if store.sqlite:
            stored = await _load_zone_devices(conn, zone, observations)
        else:
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ZONE_LOCK_NAMESPACE, zone_lock_key(zone))))
            raw = await staged.driver(conn)
            stored = await staged.load_devices(raw, zone, observations)
        plan = plan_batch(stored, observations, sighting, probes=probes)
        seen, unretired = unretire_seen(plan.devices, sighting)
        plan = replace(plan, devices=seen, changes=plan.changes + unretired)
        stored_macs = {d.id: d.mac_addresses for d in stored}
        reported = reported_device_ids(stored, observations, plan.devices)
        if store.sqlite:
            await _write(conn, insert, plan, stored_macs)
            await mark_seen(conn, insert, reported, discovery, job_run_id)
        else:
            await staged.write(
                raw, plan, stored_macs=stored_macs, seen=reported, discovery=discovery, job_run_id=job_run_id
            )
        run_stale_total = 0
        if plan.stale:
            run_stale_total = await _count_stale(
                conn, (collector_instance_uid, job_run_id, attempt, sequence), plan.stale
            )
    return CommitResult(
        duplicate=False,
        devices=len(plan.devices),
        changes=len(plan.changes),
        stale=plan.stale,
        skipped=tuple(plan.skipped),
        run_stale_total=run_stale_total,
    )


async def _count_stale(conn: AsyncConnection, key: tuple[str, str, int, int], stale: int) -> int:
    """Record the batch's stale count; the run's total over every committed batch (any collector).

    `key` is the batch's identity: (collector instance uid, job run id, attempt, sequence).
    """
    instance_uid, job_run_id, attempt, sequence = key
    batch = ingested_batches.c
    await conn.execute(
        sa.update(ingested_batches)
        .where(
            batch.collector_instance_uid == instance_uid,
            batch.job_run_id == job_run_id,
            batch.attempt == attempt,
            batch.sequence == sequence,
        )
        .values(stale_observations=stale)
    )
    total = await conn.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(batch.stale_observations), 0)).where(
            batch.job_run_id == job_run_id, batch.stale_observations > 0
        )
    )
    return int(total or 0)


def zone_lock_key(zone: str) -> int:
    """A signed 32-bit hash of the zone; two zones sharing one only serialize each other."""
    return int.from_bytes(hashlib.blake2b(zone.encode(), digest_size=4).digest(), "big", signed=True)


def _insert_for(store: InventoryStore) -> Any:
    return sqlite.insert if store.sqlite else postgresql.insert


async def _load_zone_devices(
    conn: AsyncConnection, zone: str, observations: Sequence[DeviceObservation]
) -> list[DeviceRecord]:
    """The zone's devices at the batch's IPs or carrying its MACs or engine ids, with ports."""
    rows: dict[str, Any] = {}
    for chunk in chunked(observations, IN_CHUNK):
        ips = sorted({o.ip for o in chunk})
        macs = sorted({mac for o in chunk for mac in normalize_macs(o.mac_addresses)})
        engines = sorted({e for o in chunk if o.snmp is not None and (e := normalize_engine_id(o.snmp.engine_id))})
        # One query per way a device can match, so each uses its (zone, ...) b-tree; one
        # `zone = z AND (ip IN .. OR ..)` used none of them. MACs go through `device_macs`:
        # `?|` on the JSON column read the whole zone (PostgreSQL cannot estimate it).
        matches: list[sa.ColumnElement[bool]] = [devices.c.ip.in_(ips)]
        if engines:
            matches.append(devices.c.snmp_engine_id.in_(engines))
        if macs:
            # Ids first, then devices by primary key: as one `id IN (SELECT ...)` PostgreSQL
            # re-ran the subquery per zone device while the tables had no statistics yet
            # (1.5 s per batch at 2,000 devices before the first ANALYZE).
            carriers = await conn.scalars(
                sa.select(device_macs.c.device_id).where(device_macs.c.zone == zone, device_macs.c.mac.in_(macs))
            )
            if carrier_ids := sorted(set(carriers)):
                matches.append(devices.c.id.in_(carrier_ids))
        for match in matches:
            result = await conn.execute(sa.select(devices).where(devices.c.zone == zone, match))
            rows.update((row["id"], row) for row in result.mappings())
    ports = await load_ports(conn, list(rows))
    return [device_record(row, ports.get(device_id, {})) for device_id, row in rows.items()]


async def _write(conn: AsyncConnection, insert: Any, plan: BatchPlan, stored_macs: dict[str, tuple[str, ...]]) -> None:
    if plan.moved:
        # Free the IPs moved devices leave, so any device may take one in the upsert below
        # whatever the row order; the upsert gives every moved device its new IP.
        for chunk in chunked(plan.moved, IN_CHUNK):
            await conn.execute(
                sa.update(devices).where(devices.c.id.in_(chunk)).values(ip=sa.literal("~") + devices.c.id)
            )
    await _upsert(conn, insert, devices, ["id"], [device_row(d) for d in plan.devices])
    await _write_macs(conn, plan.devices, stored_macs)
    await _upsert(
        conn, insert, device_ports, ["device_id", "protocol", "port"], [port_row(i, p) for i, p in plan.ports]
    )
    if plan.changes:
        await conn.execute(
            sa.insert(device_changes).returning(device_changes.c.id).execution_options(**_BULK),
            [change_row(c) for c in plan.changes],
        )
    await _write_notes(conn, plan)


async def _write_macs(
    conn: AsyncConnection, written: Sequence[DeviceRecord], stored_macs: dict[str, tuple[str, ...]]
) -> None:
    """Keep `device_macs` equal to each written device's MACs: replace the rows of those that changed."""
    changed = [d for d in written if tuple(d.mac_addresses) != stored_macs.get(d.id, ())]
    for chunk in chunked([d.id for d in changed if d.id in stored_macs], IN_CHUNK):
        await conn.execute(sa.delete(device_macs).where(device_macs.c.device_id.in_(chunk)))
    rows = [{"zone": d.zone, "mac": mac, "device_id": d.id} for d in changed for mac in sorted(set(d.mac_addresses))]
    if rows:
        await conn.execute(sa.insert(device_macs).returning(device_macs.c.device_id).execution_options(**_BULK), rows)


async def _write_notes(conn: AsyncConnection, plan: BatchPlan) -> None:
    """Drop the notes of the sources each device's update speaks for, then store the new ones."""
    by_sources: dict[frozenset[str], list[str]] = {}
    for update in plan.notes:
        if update.replaced:
            by_sources.setdefault(update.replaced, []).append(update.device_id)
    for sources, device_ids in by_sources.items():
        for chunk in chunked(device_ids, IN_CHUNK):
            await conn.execute(
                sa.delete(device_notes).where(
                    device_notes.c.device_id.in_(chunk), device_notes.c.source.in_(sorted(sources))
                )
            )
    rows = [
        {
            "device_id": update.device_id,
            "source": note.source,
            "note": note.text,
            "noted_at": note.noted_at,
            "job_run_id": note.job_run_id,
        }
        for update in plan.notes
        for note in update.notes
    ]
    if rows:
        await conn.execute(sa.insert(device_notes).returning(device_notes.c.device_id).execution_options(**_BULK), rows)


async def _upsert(
    conn: AsyncConnection, insert: Any, table: sa.Table, key: list[str], rows: list[dict[str, Any]]
) -> None:
    """Multi-row INSERT ... ON CONFLICT (key) DO UPDATE SET every other column."""
    if not rows:
        return
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=key, set_={c.name: statement.excluded[c.name] for c in table.c if c.name not in key}
    )
    await conn.execute(statement.returning(*(table.c[k] for k in key)).execution_options(**_BULK), rows)
