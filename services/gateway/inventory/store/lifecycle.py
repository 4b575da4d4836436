"""A job run's end in the inventory: count missed runs, apply the retirement rule (domain/lifecycle.py).

One transaction under the zone's write lock (the lock `commit_batch` takes), so a batch
being committed for the zone is either wholly before the count or wholly after it:

1. Load the zone's devices (id, ip, last seen, retired) and the discovery's counters.
2. Every device at an address the run covered gets `after_run` (one more miss, unless the
   run reported it or its end was counted before); a counter of the discovery for a device
   it no longer covers is dropped.
3. Every active device of the zone whose counters (smallest over its discoveries) or last
   sighting match the rule is retired, with a history entry.

Nothing else of a device changes: ports, host name and facts stay as last measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.inventory.domain.lifecycle import MissedRuns, RetirementRule, after_run, retired_change
from services.gateway.inventory.domain.run_targets import TargetSet
from services.gateway.inventory.store.commit import ZONE_LOCK_NAMESPACE, zone_lock_key
from services.gateway.inventory.store.models import device_changes, device_missed_runs, devices
from services.gateway.inventory.store.queries import IN_CHUNK, InventoryStore, change_row, chunked, load_missed_runs


@dataclass(frozen=True)
class RunEnd:
    covered: int
    """Devices of the zone at an address the run scanned."""
    missed: int
    """Of those, how many the run did not report (their counters went up)."""
    retired: int
    """Devices of the zone the rule retired now."""


async def record_run_end(
    store: InventoryStore,
    *,
    zone: str,
    discovery: str,
    job_run_id: str,
    coverage: TargetSet | None,
    rule: RetirementRule,
    now: datetime,
) -> RunEnd:
    """Count run `job_run_id` of `discovery` as ended successfully in `zone` (idempotent).

    `coverage` None (the run's targets cannot be known) counts no misses; the rule still runs.
    """
    async with store.write() as conn:
        if not store.sqlite:
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ZONE_LOCK_NAMESPACE, zone_lock_key(zone))))
        zone_devices = (
            await conn.execute(
                sa.select(devices.c.id, devices.c.ip, devices.c.last_seen, devices.c.retired_at).where(
                    devices.c.zone == zone
                )
            )
        ).all()
        counters = {
            row.device_id: MissedRuns(row.missed_runs, row.last_run_id)
            for row in await conn.execute(
                sa.select(device_missed_runs)
                .join(devices, devices.c.id == device_missed_runs.c.device_id)
                .where(devices.c.zone == zone, device_missed_runs.c.discovery == discovery)
            )
        }
        covered = [d.id for d in zone_devices if coverage is not None and d.ip in coverage]
        updates = [
            (device_id, counter)
            for device_id in covered
            if (counter := after_run(counters.get(device_id), job_run_id)) is not None
        ]
        missed = sum(1 for _, counter in updates if counter.missed_runs > 0)
        if coverage is not None:
            covered_ids = set(covered)
            dropped = [device_id for device_id in counters if device_id not in covered_ids]
            for chunk in chunked(dropped, IN_CHUNK):
                await conn.execute(
                    sa.delete(device_missed_runs).where(
                        device_missed_runs.c.discovery == discovery, device_missed_runs.c.device_id.in_(chunk)
                    )
                )
        await _write_counters(conn, discovery, updates, counters)
        lowest = await load_missed_runs(conn, [d.id for d in zone_devices])
        retiring = [
            (d.id, reason)
            for d in zone_devices
            if d.retired_at is None
            and (reason := rule.reason(missed_runs=lowest.get(d.id, 0), last_seen=d.last_seen, now=now))
        ]
        if retiring:
            await conn.execute(
                sa.update(devices)
                .where(devices.c.id == sa.bindparam("device_id"))
                .values(
                    retired_at=sa.bindparam("at", type_=devices.c.retired_at.type),
                    retired_reason=sa.bindparam("reason"),
                ),
                [{"device_id": device_id, "at": now, "reason": reason} for device_id, reason in retiring],
            )
            await conn.execute(
                sa.insert(device_changes),
                [change_row(retired_change(device_id, reason, now, job_run_id)) for device_id, reason in retiring],
            )
    return RunEnd(covered=len(covered), missed=missed, retired=len(retiring))


async def _write_counters(
    conn: AsyncConnection,
    discovery: str,
    updates: list[tuple[str, MissedRuns]],
    existing: dict[str, MissedRuns],
) -> None:
    new = [(i, c) for i, c in updates if i not in existing]
    changed = [(i, c) for i, c in updates if i in existing]
    if new:
        await conn.execute(
            sa.insert(device_missed_runs),
            [
                {"device_id": i, "discovery": discovery, "missed_runs": c.missed_runs, "last_run_id": c.last_run_id}
                for i, c in new
            ],
        )
    if changed:
        await conn.execute(
            sa.update(device_missed_runs)
            .where(
                device_missed_runs.c.device_id == sa.bindparam("key_id"),
                device_missed_runs.c.discovery == sa.bindparam("key_discovery"),
            )
            .values(missed_runs=sa.bindparam("missed"), last_run_id=sa.bindparam("run")),
            [
                {
                    "key_id": i,
                    "key_discovery": discovery,
                    "missed": c.missed_runs,
                    "run": c.last_run_id,
                }
                for i, c in changed
            ],
        )
