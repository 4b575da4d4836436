"""The registry's hand-written migrations create exactly the tables its models describe,
and carry the rows of earlier revisions forward."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from outpost.db import create_engine, ensure_schema, is_sqlite, migrate
from services.registry.store.database import MIGRATIONS_DIR, SCHEMA
from services.registry.store.models import metadata
from services.registry.store.queries import RegistryStore


async def test_migrations_match_the_models_and_are_idempotent(database_url: str) -> None:
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)  # a restart migrates again

    def differences(connection: sa.Connection) -> list[Any]:
        opts = {"compare_type": True, "version_table": f"alembic_version_{SCHEMA}"}
        context = MigrationContext.configure(connection, opts=opts)
        return list(compare_metadata(context, metadata))

    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
            tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert diff == []
    assert {"server_instance", "collectors", "collector_events", "name_conflicts", "handshake_refusals"} <= tables


async def _migrate(database_url: str, revision: str, *, down: bool = False) -> None:
    engine = create_engine(database_url, SCHEMA)
    try:
        await ensure_schema(engine, SCHEMA)
    finally:
        await engine.dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["schema"] = SCHEMA
    await asyncio.to_thread(command.downgrade if down else command.upgrade, cfg, revision)


async def test_0003_keeps_collectors_and_dates_their_state_from_the_change_log(database_url: str) -> None:
    """Rows written under 0002 read under 0003: state_changed_at from the events, no spool yet."""
    changed = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    stored = changed.replace(tzinfo=None) if is_sqlite(database_url) else changed
    await _migrate(database_url, "0002")
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO collector_events (kind, instance_uid, name, state, reason, changed_by, created_at) "
                    "VALUES ('state_changed', 'uid-1', 'edge-old', 'disabled', 'maintenance', 'bob', :at)"
                ),
                {"at": stored},
            )
            revision = await conn.scalar(sa.text("SELECT max(revision) FROM collector_events"))
            await conn.execute(
                sa.text(
                    "INSERT INTO collectors (instance_uid, name, zone, version, username, password_verifier, "
                    "public_key, fingerprint, state, state_reason, state_changed_by, remote_address, transport, "
                    "gateway_id, session_id, connected, first_seen, last_seen, registered_at, revision, last_error) "
                    "VALUES ('uid-1', 'edge-old', 'dmz', '0.9', 'svc', 'x', :key, 'SHA256:x', 'disabled', "
                    "'maintenance', 'bob', '', '', 'gw-1', 's-1', true, :at, :at, :at, :revision, 'link reset')"
                ),
                {"key": b"k" * 32, "at": stored, "revision": revision},
            )
    finally:
        await engine.dispose()

    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    store = RegistryStore(create_engine(database_url, SCHEMA))
    try:
        async with store.read() as tx:
            collector = await tx.collector_by_name("edge-old")
            refusals = await tx.refusals_for("edge-old", "uid-1")
    finally:
        await store.dispose()

    assert collector is not None
    assert (collector.state_changed_at, collector.state_changed_by) == (changed, "bob")
    assert (collector.spool, collector.clock_skew_ms, collector.reported_at) == (None, None, None)
    assert (collector.connected, collector.last_error) == (True, "link reset")
    assert refusals == []


async def test_0003_downgrades_to_0002_and_upgrades_again(database_url: str) -> None:
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    await _migrate(database_url, "0002", down=True)
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
            columns = await conn.run_sync(lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("collectors")})
    finally:
        await engine.dispose()
    assert "handshake_refusals" not in tables
    assert not {"spool", "clock_skew_ms", "reported_at", "state_changed_at"} & columns
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)


async def test_0007_reads_existing_collectors_as_streaming_and_downgrades(database_url: str) -> None:
    """Rows written under 0006 read under 0007 with no check-in interval: the online rule as before."""
    seen = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    stored = seen.replace(tzinfo=None) if is_sqlite(database_url) else seen
    await _migrate(database_url, "0006")
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO collectors (instance_uid, name, zone, version, username, password_verifier, "
                    "public_key, fingerprint, state, state_reason, state_changed_by, remote_address, transport, "
                    "gateway_id, session_id, connected, first_seen, last_seen, revision, last_error) "
                    "VALUES ('uid-9', 'edge-poll', 'dmz', '1.0', 'svc', 'x', :key, 'SHA256:x', 'enabled', "
                    "'', 'bob', '', 'http_poll', 'gw-1', 's-1', true, :at, :at, 1, '')"
                ),
                {"key": b"k" * 32, "at": stored},
            )
    finally:
        await engine.dispose()

    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    store = RegistryStore(create_engine(database_url, SCHEMA))
    try:
        async with store.read() as tx:
            collector = await tx.collector_by_name("edge-poll")
    finally:
        await store.dispose()
    assert collector is not None
    assert (collector.transport, collector.check_in_seconds, collector.last_seen) == ("http_poll", 0, seen)

    await _migrate(database_url, "0006", down=True)
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("collectors")})
    finally:
        await engine.dispose()
    assert "check_in_seconds" not in columns
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)


async def test_0009_creates_the_key_tables_and_downgrades_to_0008(database_url: str) -> None:
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    await _migrate(database_url, "0008", down=True)
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert not {"access_keys", "server_keys"} & tables
    await migrate(database_url, MIGRATIONS_DIR, schema=SCHEMA)
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            indexes = await conn.run_sync(
                lambda sync: {i["name"]: i["unique"] for i in sa.inspect(sync).get_indexes("access_keys")}
            )
    finally:
        await engine.dispose()
    assert indexes.get("uq_access_keys_live_name")
