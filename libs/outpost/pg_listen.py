"""Wake-ups from PostgreSQL's LISTEN/NOTIFY: another replica's commit, told within milliseconds.

A change feed (`outpost.change_feed`) must notice rows that another replica of the same
service committed. Polling `max(revision)` every 250 ms does that, but every replica of
every service then queries the database four times a second forever, idle or not: with
N replicas, N times the load (measured: 2.5% of a core on PostgreSQL for an idle control
plane). PostgreSQL can push instead: a statement trigger on the events table runs
`pg_notify(channel, '')` (migrations add it; the notification is sent when the writing
transaction commits, and never for one that rolls back), and each replica holds one
connection that `LISTEN`s on the channel.

`ChannelListener` owns that connection: a plain asyncpg connection outside the
SQLAlchemy pool (a pooled connection would be recycled or pinged away under it). It
calls `on_wake` for every notification and once more after each (re)connect, since
notifications sent while it was away are lost. While it is not connected,
`listening` is False and the feed falls back to its fast poll; it reconnects with a
capped full-jitter backoff. SQLite has no LISTEN: `for_database` returns None there, and
one SQLite file has one writer process anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy.engine import make_url

from outpost.backoff import Backoff

log = structlog.get_logger(__name__)

RECONNECT_MIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0
KEEPALIVE_SECONDS = 15.0
"""How often an idle listening connection is checked: a dead one is noticed this fast."""


def channel_name(schema: str, table: str) -> str:
    """The NOTIFY channel for `table` of the service whose schema is `schema`.

    Channels are per database, and every service shares one database in its own schema,
    so the schema is part of the name. The migrations' triggers use the same function.
    """
    return f"outpost_{schema}_{table}"


def asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes, from the service's SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChannelListener:
    """One LISTEN connection for one channel; calls `on_wake` on each notification."""

    def __init__(self, dsn: str, channel: str, *, application_name: str) -> None:
        self._dsn = dsn
        self._channel = channel
        self._application_name = application_name
        self._on_wake: Callable[[], None] = _nothing
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        self._lost = asyncio.Event()
        self.listening = False

    @classmethod
    def for_database(cls, url: str, channel: str, *, application_name: str) -> ChannelListener | None:
        """A listener for PostgreSQL URLs; None for SQLite (there is nothing to listen to)."""
        if make_url(url).get_backend_name() != "postgresql":
            return None
        return cls(asyncpg_dsn(url), channel, application_name=application_name)

    def start(self, on_wake: Callable[[], None]) -> None:
        self._on_wake = on_wake
        self._task = asyncio.create_task(self._run(), name=f"listen-{self._channel}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    async def _run(self) -> None:
        backoff = Backoff(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        while True:
            try:
                await self._listen_until_lost()
                backoff.reset()
            except Exception as exc:  # any failure: fall back to polling and reconnect, never die
                log.warning("watch_listen_failed", channel=self._channel, error=str(exc))
            self.listening = False
            await self._disconnect()
            self._on_wake()  # the feed polls now (and fast, until we are back)
            await asyncio.sleep(backoff.next_delay())

    async def _listen_until_lost(self) -> None:
        self._lost.clear()
        self._connection = await asyncpg.connect(
            self._dsn, timeout=10, server_settings={"application_name": self._application_name}
        )
        self._connection.add_termination_listener(lambda _conn: self._lost.set())
        await self._connection.add_listener(self._channel, self._notified)
        self.listening = True
        log.info("watch_listening", channel=self._channel)
        self._on_wake()  # anything committed while we were not listening
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    await self._lost.wait()
            if not self._lost.is_set():
                await self._connection.execute("SELECT 1", timeout=10)
        log.warning("watch_listen_lost", channel=self._channel)

    def _notified(self, _connection: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._on_wake()

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):  # closing a broken connection may fail any way
                await asyncio.wait_for(connection.close(), timeout=5)


def _nothing() -> None:
    return None


NOTIFY_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION outpost_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outpost_' || TG_TABLE_SCHEMA || '_' || TG_TABLE_NAME, '');
    RETURN NULL;
END
$$
"""
"""Statement trigger body: one empty notification per writing statement (PostgreSQL
folds identical ones of a transaction into one, and sends them at commit)."""


def notify_trigger_sql(table: str) -> str:
    """The trigger that makes every insert or update of `table` wake its listeners."""
    return (
        f'CREATE TRIGGER "{table}_notify" AFTER INSERT OR UPDATE ON "{table}" '
        "FOR EACH STATEMENT EXECUTE FUNCTION outpost_notify_change()"
    )


def drop_notify_trigger_sql(table: str) -> str:
    return f'DROP TRIGGER IF EXISTS "{table}_notify" ON "{table}"'
