"""`outpost-<service> migrate`: bring one service's tables to the newest revision, then exit.

Every service also migrates when it starts, so a single process needs nothing else. In
Kubernetes the chart runs this subcommand once per release, as a Helm hook Job, before
the new Deployments roll: an upgrade that fails to migrate then stops the release
instead of leaving replicas crash-looping, and the replicas that start afterwards find
the tables at head and only take (and release) the service's setup lock. The migration
itself is the service's own start-up code (`open_store`/`open_inventory`), so both paths
hold the same PostgreSQL advisory lock: a Job and a replica, or two replicas, never run
an upgrade at the same time.

Settings are the service's own: `--database-url` (or `OUTPOST_<SERVICE>_DATABASE_URL`), or
`--database-url-file` (`OUTPOST_<SERVICE>_DATABASE_URL_FILE`, e.g. a systemd credential),
`--data-dir` for the SQLite default, and the log flags. Exit 0 when the tables are at
head, 1 with one line naming the database (password hidden) when they cannot be.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import NoReturn

import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from outpost.config import HelpFormatter, add_common_flags, add_secret_flags, env_default, secret_value
from outpost.db import default_sqlite_url, redact
from outpost.db_create import how_to_create, is_missing_database
from outpost.logs import configure_logging
from outpost.process import exit_now

COMMAND = "migrate"

log = structlog.get_logger(__name__)


def is_migrate_command(argv: Sequence[str] | None) -> bool:
    """True when the process was started as `outpost-<service> migrate ...`."""
    args = sys.argv[1:] if argv is None else list(argv)
    return args[:1] == [COMMAND]


def migrate_main(
    service: str, argv: Sequence[str] | None, migrate: Callable[[str], Coroutine[object, object, None]]
) -> NoReturn:
    """Parse the subcommand's flags, run `migrate(database_url)`, exit 0 or 1."""
    args = list(sys.argv[1:] if argv is None else argv)[1:]
    parser = argparse.ArgumentParser(
        prog=f"outpost-{service} {COMMAND}",
        formatter_class=HelpFormatter,
        description=f"Migrate the {service}'s tables to the newest revision and exit "
        "(the service also does this when it starts; the Helm chart runs it as a hook Job).",
    )
    add_secret_flags(parser, service, "database_url", help="postgresql+asyncpg://... (default: SQLite in --data-dir)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(env_default(service, "data_dir", ".outpost")),
        help="where the SQLite file lives when no --database-url is given (default: %(default)s)",
    )
    add_common_flags(parser, service)
    opts = parser.parse_args(args)
    url = secret_value(parser, opts, "database_url") or default_sqlite_url(opts.data_dir, service)
    try:
        make_url(url)
    except ArgumentError:
        parser.exit(2, f"outpost-{service} {COMMAND}: error: --database-url is not a database URL\n")
    configure_logging(opts.log_format, opts.log_level, service=service)
    started = time.monotonic()
    try:
        asyncio.run(migrate(url))
    except Exception as exc:  # a driver's errors have no common base: name the database and stop
        log.error("migration_failed", database=redact(url), error=f"{type(exc).__name__}: {exc}")
        reason = f"{type(exc).__name__}: {exc}"
        if is_missing_database(exc):
            reason += f"; {how_to_create(url)}"
        print(f"outpost-{service} {COMMAND}: cannot migrate {redact(url)}: {reason}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info("database_migrated", database=redact(url), seconds=round(time.monotonic() - started, 3))
    exit_now(0)
