"""Watches woken by PostgreSQL LISTEN/NOTIFY: another replica's change without polling.

Every replica here polls only every 60 s, far beyond each wait, so a change can only
arrive in time because the writing transaction's NOTIFY woke the other replica. The
listening connection is killed from the server side to show it comes back and that a
change committed while it was away still arrives. SQLite has no LISTEN: the feed has no
listener there and keeps polling.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest

from outpost.pg_listen import ChannelListener, asyncpg_dsn, channel_name
from tests.conftest import POSTGRES_DSN
from tests.integration.test_registry_support import (
    CS,
    announce,
    eventually,
    register,
    running_registry,
    watching,
)
from tests.integration.test_scheduler_support import create_discovery, running_scheduler, start_run
from tests.integration.test_scheduler_support import watching as watching_dispatch

SLOW_POLL = 60.0
WAIT = 20.0
LISTEN_APP = "outpost-registry-listen"

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_url(postgres_database_url: str) -> str:
    return postgres_database_url


async def _listen_backends(database: str) -> list[int]:
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2", database, LISTEN_APP
        )
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


async def _terminate(pids: list[int]) -> None:
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        for pid in pids:
            await connection.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


async def test_a_change_on_one_replica_wakes_the_others_watch_without_polling(pg_url: str) -> None:
    async with (
        running_registry(pg_url, watch_poll_interval=SLOW_POLL) as replica_a,
        running_registry(pg_url, watch_poll_interval=SLOW_POLL) as replica_b,
    ):
        await eventually(lambda: _is_listening(replica_a), what="replica A listening")
        await announce(replica_b, "edge-7")
        async with watching(replica_a) as watch:
            await watch.next()
            await register(replica_b, "edge-7")
            event = await watch.next_change(timeout=WAIT)
        assert (event.name, event.state) == ("edge-7", CS.COLLECTOR_STATE_ENABLED)


async def test_the_listener_comes_back_and_a_change_made_while_it_was_away_still_arrives(pg_url: str) -> None:
    database = pg_url.rsplit("/", 1)[1]
    async with (
        running_registry(pg_url, watch_poll_interval=SLOW_POLL) as replica_a,
        running_registry(pg_url, watch_poll_interval=SLOW_POLL, watch_listen=False) as replica_b,
    ):
        await eventually(lambda: _is_listening(replica_a), what="replica A listening")
        before = await _listen_backends(database)
        assert len(before) == 2  # replica A's two feeds; replica B does not listen
        await announce(replica_b, "edge-7")
        async with watching(replica_a) as watch:
            await watch.next()
            await _terminate(before)
            await register(replica_b, "edge-7")  # committed while A may not be listening
            event = await watch.next_change(timeout=WAIT)
            assert (event.name, event.state) == ("edge-7", CS.COLLECTOR_STATE_ENABLED)

            async def reconnected() -> bool:
                now = await _listen_backends(database)
                return len(now) == 2 and not set(now) & set(before)

            await eventually(reconnected, timeout=WAIT, what="replica A listening again")


async def test_polling_only_replicas_open_no_listening_connection(pg_url: str) -> None:
    database = pg_url.rsplit("/", 1)[1]
    async with running_registry(pg_url, watch_listen=False) as registry:
        assert not registry.server.hub.listening
        assert await _listen_backends(database) == []


def test_sqlite_has_no_listener_and_postgres_urls_become_asyncpg_dsns() -> None:
    assert ChannelListener.for_database("sqlite+aiosqlite:///x.db", "c", application_name="a") is None
    assert asyncpg_dsn("postgresql+asyncpg://u:p%40ss@h:5433/db") == "postgresql://u:p%40ss@h:5433/db"
    assert channel_name("registry", "collector_events") == "outpost_registry_collector_events"


async def _is_listening(replica: object) -> bool:
    server = replica.server  # type: ignore[attr-defined]
    return bool(server.hub.listening and server.access_key_feed.listening)


async def test_the_schedulers_dispatch_watch_is_woken_by_another_replicas_commit(pg_url: str) -> None:
    async with (
        running_scheduler(pg_url, watch_poll_interval=SLOW_POLL) as replica_a,
        running_scheduler(pg_url, watch_poll_interval=SLOW_POLL) as replica_b,
    ):
        await eventually(lambda: _hub_listening(replica_a), what="scheduler replica A listening")
        await create_discovery(replica_b, zone="dmz")
        async with watching_dispatch(replica_a) as watch:
            await watch.next()
            run = await start_run(replica_b)
            event = await watch.next_change(timeout=WAIT)
        assert event.job_run.id == run.id


async def _hub_listening(replica: object) -> bool:
    return bool(replica.server.hub.listening)  # type: ignore[attr-defined]
