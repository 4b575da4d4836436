"""The PostgreSQL database named in a URL that does not exist yet: create it, or say how.

`make run DATABASE_URL=postgresql+asyncpg://user@host/outpost` on a fresh server used to
stop with "database "outpost" does not exist". `outpost-run` now creates it once, before
any service starts, when the user may (`CREATE DATABASE` from the server's maintenance
database with the same credentials). The services never create it themselves (in a
deployment the database is the operator's); when it is missing they stop with the
command that creates it (`open_failure`).
"""

from __future__ import annotations

import shlex

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

INVALID_CATALOG_NAME = "3D000"
"""SQLSTATE: the database in the connection request does not exist."""
DUPLICATE_DATABASE = "42P04"
"""SQLSTATE: someone else created it first (another `outpost-run`): fine."""
MAINTENANCE_DATABASES = ("postgres", "template1")
"""Where to connect to run `CREATE DATABASE`: every PostgreSQL server has one of these."""


class DatabaseNotCreatedError(Exception):
    """The database does not exist and this user could not create it; the message says how."""


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error anywhere in `exc`'s chain (SQLAlchemy wraps asyncpg's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "orig", None)):
            code = getattr(candidate, "sqlstate", None)
            if isinstance(code, str):
                return code
        current = current.__cause__ or current.__context__
    return None


def is_missing_database(exc: BaseException) -> bool:
    return sqlstate(exc) == INVALID_CATALOG_NAME


def how_to_create(url: str | URL, *, as_superuser: bool = False) -> str:
    """The shell command and the SQL that create the database of `url`.

    `as_superuser`: the URL's user may not create databases, so the command runs as
    `postgres` (any user who may) and hands the database to the URL's user.
    """
    parsed = make_url(url)
    command = ["createdb"]
    if parsed.host:
        command += ["-h", parsed.host]
    if parsed.port:
        command += ["-p", str(parsed.port)]
    sql = f"CREATE DATABASE {_quote_identifier(parsed.database)}"
    if as_superuser:
        command += ["-U", "postgres"]
        if parsed.username:
            command += ["-O", parsed.username]
            sql += f" OWNER {_quote_identifier(parsed.username)}"
    elif parsed.username:
        command += ["-U", parsed.username]
    command.append(parsed.database or "")
    who = "as a user who may create databases" if as_superuser else "once"
    return f"create it {who} with `{shlex.join(command)}` (or in SQL: {sql};)"


def open_failure(url: str, exc: BaseException) -> str:
    """One line for a service that cannot open its database; says how to create a missing one."""
    reason = _first_line(exc) if isinstance(exc, OSError | sa.exc.ArgumentError) else _described(exc)
    line = f"cannot open database {make_url(url).render_as_string(hide_password=True)}: {reason}"
    if is_missing_database(exc):
        line += f"; {how_to_create(url)}, or start the control plane with outpost-run, which creates it"
    return line


async def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database of `url` when it does not exist; True when it was created.

    Any other failure to connect is left for the services to report as they start.
    Raises `DatabaseNotCreatedError` when the database is missing and cannot be created.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return False
    engine = create_async_engine(parsed, poolclass=NullPool)
    try:
        async with engine.connect():
            return False
    except Exception as exc:  # a driver's errors have no common base
        if not is_missing_database(exc):
            return False
    finally:
        await engine.dispose()
    return await _create(parsed)


async def _create(parsed: URL) -> bool:
    statement = f"CREATE DATABASE {_quote_identifier(parsed.database or '')}"
    failure: BaseException | None = None
    for maintenance in MAINTENANCE_DATABASES:
        engine = create_async_engine(parsed.set(database=maintenance), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(sa.text(statement))
            return True
        except Exception as exc:  # permission denied, no such maintenance database, ...
            if sqlstate(exc) == DUPLICATE_DATABASE:
                return False
            failure = exc
            if sqlstate(exc) != INVALID_CATALOG_NAME:
                break  # the server answered: another maintenance database will say the same
        finally:
            await engine.dispose()
    reason = _plain(failure) if failure is not None else "no maintenance database"
    raise DatabaseNotCreatedError(
        f'database "{parsed.database}" does not exist and user {parsed.username or "(default)"} '
        f"cannot create it ({reason}): {how_to_create(parsed, as_superuser=True)}"
    )


def _quote_identifier(name: str | None) -> str:
    return '"' + (name or "").replace('"', '""') + '"'


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {_plain(error)}"


def _plain(error: BaseException) -> str:
    """The driver's message alone: SQLAlchemy's "(dialect.Error) " prefix and footer left out."""
    text = _first_line(error)
    if text.startswith("(") and ") " in text:
        text = text.split(") ", 1)[1]
    return text


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
