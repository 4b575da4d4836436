"""The scheduler's hand-written migrations create exactly the tables its models describe, and keep data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from outpost.db import create_engine, ensure_schema, migrate
from services.scheduler.store.database import MIGRATIONS_DIR, SCHEMA
from services.scheduler.store.models import metadata
from services.scheduler.store.queries import SchedulerStore
from tests.integration.test_scheduler_support import is_postgres

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


async def test_migrations_match_the_models_and_are_idempotent(database_url: str) -> None:
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)  # a restart migrates again

    def differences(connection: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _not_alembic_bookkeeping}
        )
        return list(compare_metadata(context, metadata))

    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
            tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
            first_event = (await conn.execute(sa.text("SELECT revision, kind FROM dispatch_events"))).all()
    finally:
        await engine.dispose()
    assert diff == []
    assert {"discoveries", "schedules", "job_runs", "dispatch_events", "settings"} <= tables
    assert [tuple(row) for row in first_event] == [(1, "settings")]


def _not_alembic_bookkeeping(name: str | None, kind: str, _parents: Any) -> bool:
    """Alembic's version table (named per service by `outpost.db`) is not one of ours."""
    return not (kind == "table" and (name or "").startswith("alembic_version"))


async def _alembic(database_url: str, action: str, revision: str) -> None:
    """`alembic upgrade|downgrade REVISION` on the scheduler's history (`migrate` only goes to head)."""
    engine = create_engine(database_url, SCHEMA)
    try:
        await ensure_schema(engine, SCHEMA)
    finally:
        await engine.dispose()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = SCHEMA
    await asyncio.to_thread(getattr(command, action), config, revision)


def _run_row(run_id: str, state: str, *, dispatched: bool, sqlite: bool) -> dict[str, Any]:
    at = T0.replace(tzinfo=None) if sqlite else T0
    snapshot = {"name": "lab", "targets": ["10.0.0.0/24"], "zone": "lab", "created_at": T0.isoformat()}
    return {
        "id": run_id,
        "discovery": "lab",
        "discovery_snapshot": snapshot,
        "schedule_name": None,
        "trigger": "manual",
        "target_collector": "",
        "target_zone": "lab",
        "collector": "edge-7" if dispatched else "",
        "collector_instance_uid": "uid-edge-7" if dispatched else "",
        "gateway_id": "gw-1" if dispatched else "",
        "state": state,
        "reason": "",
        "targets_done": 0,
        "targets_total": 0,
        "devices_found": 0,
        "batches_sent": 0,
        "due_at": at,
        "created_at": at,
        "dispatched_at": at if dispatched else None,
        "cancelled_by": "",
    }


async def test_upgrading_from_0002_gives_runs_handed_out_one_attempt_and_active_ones_a_lease(
    database_url: str,
) -> None:
    await _alembic(database_url, "upgrade", "0002")
    sqlite = not is_postgres(database_url)
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.begin() as conn:
            job_runs = await conn.run_sync(lambda sync: sa.Table("job_runs", sa.MetaData(), autoload_with=sync))
            await conn.execute(
                job_runs.insert(),
                [
                    _run_row("jr_queued", "queued", dispatched=False, sqlite=sqlite),
                    _run_row("jr_dispatched", "dispatched", dispatched=True, sqlite=sqlite),
                    _run_row("jr_running", "running", dispatched=True, sqlite=sqlite),
                    _run_row("jr_succeeded", "succeeded", dispatched=True, sqlite=sqlite),
                    _run_row("jr_cancelled", "cancelled", dispatched=False, sqlite=sqlite),
                ],
            )
    finally:
        await engine.dispose()

    before = datetime.now(UTC)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    after = datetime.now(UTC)

    store = SchedulerStore(create_engine(database_url, SCHEMA))
    try:
        async with store.read() as tx:
            runs = await tx.job_runs_by_id(["jr_queued", "jr_dispatched", "jr_running", "jr_succeeded", "jr_cancelled"])
    finally:
        await store.dispose()
    assert {run_id: run.attempt for run_id, run in runs.items()} == {
        "jr_queued": 0,
        "jr_dispatched": 1,
        "jr_running": 1,
        "jr_succeeded": 1,
        "jr_cancelled": 0,
    }
    assert {(run.waiting_reason, run.waiting_cause) for run in runs.values()} == {("", "")}  # 0006: not checked yet
    leased = {run_id: run.lease_expires_at for run_id, run in runs.items() if run.lease_expires_at is not None}
    assert set(leased) == {"jr_dispatched", "jr_running"}
    lease = timedelta(seconds=90)
    assert all(before + lease - timedelta(seconds=1) <= at <= after + lease for at in leased.values())

    await _alembic(database_url, "downgrade", "0002")  # and back: the columns and index go cleanly
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)


async def test_upgrading_from_0006_counts_no_stale_observations_and_the_count_only_rises(database_url: str) -> None:
    await _alembic(database_url, "upgrade", "0006")
    sqlite = not is_postgres(database_url)
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.begin() as conn:
            job_runs = await conn.run_sync(lambda sync: sa.Table("job_runs", sa.MetaData(), autoload_with=sync))
            await conn.execute(job_runs.insert(), [_run_row("jr_done", "succeeded", dispatched=True, sqlite=sqlite)])
    finally:
        await engine.dispose()

    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)

    store = SchedulerStore(create_engine(database_url, SCHEMA))
    try:
        async with store.read() as tx:
            assert (await tx.job_runs_by_id(["jr_done"]))["jr_done"].observations_stale == 0
        async with store.write(exclusive=False) as tx:
            assert await tx.record_stale_observations("jr_done", 3)  # a finished run still takes it
            assert await tx.record_stale_observations("jr_done", 2)  # an older total lowers nothing
            assert not await tx.record_stale_observations("jr_nosuch", 1)
        async with store.read() as tx:
            assert (await tx.job_runs_by_id(["jr_done"]))["jr_done"].observations_stale == 3
    finally:
        await store.dispose()

    await _alembic(database_url, "downgrade", "0006")
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
