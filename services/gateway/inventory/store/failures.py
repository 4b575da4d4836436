"""What a failed commit means, decided where the database's exceptions are known.

Two answers matter to the caller (`services/gateway/inventory/ingest_gate.py`):

- `errors.InvalidArgument` — the batch itself can never be stored: the database refused
  its data (SQLSTATE class 22, data exception, e.g. a value out of range) or an integrity
  rule (class 23). Retrying the same batch fails the same way.
- `errors.Unavailable` — the database cannot take any commit right now, whatever the
  batch: it is down or unreachable, a connection was killed (`pg_terminate_backend`,
  failover: class 08 and 57), it is out of resources (53, 58), a transaction lost a
  deadlock or serialization race (40), the pool had no connection in time, SQLite is
  locked or its disk failed, or the schema is not what this gateway expects (42: an
  operator must migrate or grant, and the batch is fine). Resend later.

When in doubt an error from the database is `Unavailable`: retrying a good batch costs a
cool-down, dropping it loses data. On PostgreSQL the batch is written through the raw
asyncpg connection (store/staged.py), whose errors SQLAlchemy never wraps: they are read
the same way (the SQLSTATE of a server error; a client-side `DataError`, a value asyncpg
cannot encode, is the batch's; any other asyncpg error is the connection's). An exception
that did not come from the database (a bug in our code) gets None, and the caller decides.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy.exc

from outpost import errors

INVALID_SQLSTATE_CLASSES = frozenset({"22", "23"})


def commit_failure(exc: BaseException) -> errors.OutpostError | None:
    """The domain error for a commit that raised `exc`; None when the database did not raise it."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if not exc.connection_invalidated and _is_invalid_data(exc):
            return errors.InvalidArgument(f"the inventory database refused the batch: {_first_line(exc.orig)}")
        return errors.Unavailable(f"inventory database unavailable: {_first_line(exc.orig)}")
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if sqlstate[:2] in INVALID_SQLSTATE_CLASSES:
            return errors.InvalidArgument(f"the inventory database refused the batch: {_first_line(exc)}")
        return errors.Unavailable(f"inventory database unavailable: {_first_line(exc)}")
    if isinstance(exc, asyncpg.exceptions._base.DataError):  # asyncpg exports it under no other name
        return errors.InvalidArgument(f"the batch could not be sent to the database: {_first_line(exc)}")
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return errors.Unavailable(f"inventory database unavailable: {type(exc).__name__}: {_first_line(exc)}")
    if isinstance(
        exc,
        sqlalchemy.exc.TimeoutError  # no pooled connection in time
        | sqlalchemy.exc.DisconnectionError
        | sqlalchemy.exc.PendingRollbackError  # a connection left behind by an earlier failure
        | OSError  # refused, reset, unreachable (ConnectionError is one)
        | TimeoutError,
    ):
        return errors.Unavailable(f"inventory database unavailable: {type(exc).__name__}: {_first_line(exc)}")
    return None


def _is_invalid_data(exc: sqlalchemy.exc.DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)  # PostgreSQL; SQLite's errors map to the classes below
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] in INVALID_SQLSTATE_CLASSES
    return isinstance(exc, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.DataError)


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
