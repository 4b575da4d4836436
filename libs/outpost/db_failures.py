"""Tell "the database is unreachable right now" apart from a bug, for every service.

A registry or scheduler call that fails because PostgreSQL restarted, a connection was
killed, or the pool had nothing in time is worth retrying: its callers (gateways, the
CLI) must see UNAVAILABLE, not INTERNAL, and the log line is a warning, not a
traceback. Data and integrity errors (SQLSTATE classes 22 and 23) are not outages: they
stay bugs (INTERNAL) unless a service maps them to a domain error itself.
"""

from __future__ import annotations

import sqlalchemy.exc

NOT_OUTAGE_SQLSTATE_CLASSES = frozenset({"22", "23"})


def database_unavailable(exc: BaseException) -> str | None:
    """A one-line reason when `exc` means the database is unreachable or overloaded; else None."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if not exc.connection_invalidated and (
            (isinstance(sqlstate, str) and sqlstate[:2] in NOT_OUTAGE_SQLSTATE_CLASSES)
            or isinstance(exc, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.DataError)
        ):
            return None
        return f"database unavailable: {_first_line(exc.orig)}"
    if isinstance(
        exc,
        sqlalchemy.exc.TimeoutError
        | sqlalchemy.exc.DisconnectionError
        | sqlalchemy.exc.PendingRollbackError
        | ConnectionError
        | TimeoutError,
    ):
        return f"database unavailable: {type(exc).__name__}: {_first_line(exc)}"
    return None


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
