"""A batch's sightings reset the reporting discovery's missed-runs counters (domain/lifecycle.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.inventory.store.models import device_missed_runs

_BULK = {"insertmanyvalues_page_size": 5000}


async def mark_seen(
    conn: AsyncConnection, insert: Any, device_ids: Sequence[str], discovery: str, job_run_id: str
) -> None:
    """Set the counters of `discovery` for these devices to 0, touched by `job_run_id`.

    Without a discovery nothing is reset (the session always knows its runs' discovery;
    callers that commit batches outside a run, as some tests do, pass none).
    """
    if not discovery or not device_ids:
        return
    statement = insert(device_missed_runs)
    statement = statement.on_conflict_do_update(
        index_elements=["device_id", "discovery"],
        set_={"missed_runs": 0, "last_run_id": statement.excluded.last_run_id},
    )
    await conn.execute(
        statement.returning(device_missed_runs.c.device_id).execution_options(**_BULK),
        [{"device_id": i, "discovery": discovery, "missed_runs": 0, "last_run_id": job_run_id} for i in device_ids],
    )
