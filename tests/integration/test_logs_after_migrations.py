"""Alembic migrations leave logging as `configure_logging` set it: library lines stay JSON."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import structlog

from services.registry.store.database import open_store
from tests.captured_logging import configured_logging


async def test_library_and_service_logs_are_json_after_the_registry_migrates(tmp_path: Path) -> None:
    with configured_logging("json", service="registry") as stream:
        store, _ = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", datetime.now(UTC))
        await store.dispose()
        logging.getLogger("alembic.runtime.migration").warning("after the migration")
        logging.getLogger("sqlalchemy.pool").warning("pool warning")
        structlog.get_logger("services.registry.app").info("registry_started")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["event"]) for line in lines][-3:] == [
        ("alembic.runtime.migration", "after the migration"),
        ("sqlalchemy.pool", "pool warning"),
        ("services.registry.app", "registry_started"),
    ]
    assert all(line["service"] == "registry" for line in lines)
