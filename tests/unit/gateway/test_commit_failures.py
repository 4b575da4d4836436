"""How the store names a failed commit: the database cannot take it now, or never this batch."""

from __future__ import annotations

import sqlite3

import asyncpg  # type: ignore[import-untyped]
import pytest
import sqlalchemy.exc

from outpost import errors
from services.gateway.inventory.store.failures import commit_failure


class PgError(Exception):
    """What SQLAlchemy's asyncpg adapter puts in `DBAPIError.orig`: it carries the SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def wrapped(
    orig: Exception, kind: type[sqlalchemy.exc.DBAPIError] = sqlalchemy.exc.DBAPIError, invalidated: bool = False
) -> sqlalchemy.exc.DBAPIError:
    return kind("INSERT ...", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        # The database cannot take any commit now: resend later.
        (wrapped(PgError("terminating connection due to administrator command", "57P01")), errors.Unavailable),
        (wrapped(PgError("connection does not exist", "08003")), errors.Unavailable),
        (wrapped(PgError("the database system is starting up", "57P03")), errors.Unavailable),
        (wrapped(PgError("could not extend file: No space left on device", "53100")), errors.Unavailable),
        (wrapped(PgError("deadlock detected", "40P01")), errors.Unavailable),
        (wrapped(PgError('relation "devices" does not exist', "42P01")), errors.Unavailable),
        (wrapped(sqlite3.OperationalError("database is locked"), sqlalchemy.exc.OperationalError), errors.Unavailable),
        (wrapped(sqlite3.OperationalError("disk I/O error"), sqlalchemy.exc.OperationalError), errors.Unavailable),
        (wrapped(Exception("connection is closed"), sqlalchemy.exc.InterfaceError), errors.Unavailable),
        # A data error on a connection that died meanwhile says nothing about the data.
        (wrapped(PgError("value too long", "22001"), invalidated=True), errors.Unavailable),
        (sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"), errors.Unavailable),
        (ConnectionRefusedError(111, "Connect call failed"), errors.Unavailable),
        (OSError(113, "No route to host"), errors.Unavailable),
        (TimeoutError(), errors.Unavailable),
        # Raw asyncpg (PostgreSQL's COPY and staging path, store/staged.py): not wrapped by SQLAlchemy.
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"), errors.Unavailable),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), errors.Unavailable),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), errors.Unavailable),
        (asyncpg.exceptions.UndefinedTableError('relation "outpost_stage_devices" does not exist'), errors.Unavailable),
        (asyncpg.InterfaceError("cannot perform operation: connection is closed"), errors.Unavailable),
        (asyncpg.exceptions.UniqueViolationError("duplicate key value"), errors.InvalidArgument),
        (asyncpg.exceptions.StringDataRightTruncationError("value too long"), errors.InvalidArgument),
        (asyncpg.exceptions._base.DataError("invalid input for query argument $1"), errors.InvalidArgument),
        # This batch can never be stored: ack it as rejected.
        (wrapped(PgError("value too long for type character varying(256)", "22001")), errors.InvalidArgument),
        (wrapped(PgError("invalid byte sequence for encoding UTF8: 0x00", "22021")), errors.InvalidArgument),
        (wrapped(PgError("duplicate key value violates unique constraint", "23505")), errors.InvalidArgument),
        (
            wrapped(sqlite3.IntegrityError("NOT NULL constraint failed"), sqlalchemy.exc.IntegrityError),
            errors.InvalidArgument,
        ),
    ],
)
def test_database_failures_are_unavailable_unless_the_batch_itself_is_refused(
    exc: Exception, expected: type[errors.OutpostError]
) -> None:
    failure = commit_failure(exc)
    assert type(failure) is expected
    assert str(failure).splitlines() == [str(failure)]  # one line, fit for a log and a Throttle reason


@pytest.mark.parametrize("exc", [KeyError("ip"), ValueError("observed_at must be timezone-aware"), RuntimeError()])
def test_a_failure_that_did_not_come_from_the_database_is_left_to_the_caller(exc: Exception) -> None:
    assert commit_failure(exc) is None
