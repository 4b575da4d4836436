"""Watches woken by LISTEN/NOTIFY instead of polling (issue 13 item 8).

On PostgreSQL, `dispatch_events` notifies the channel
`outpost_<schema>_<table>` when a writing transaction commits (`outpost.pg_listen`);
each scheduler replica listens and reads only when something changed. SQLite: nothing.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from outpost.pg_listen import NOTIFY_FUNCTION_SQL, drop_notify_trigger_sql, notify_trigger_sql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("dispatch_events",)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(NOTIFY_FUNCTION_SQL)
    for table in TABLES:
        op.execute(notify_trigger_sql(table))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(drop_notify_trigger_sql(table))
    op.execute("DROP FUNCTION IF EXISTS outpost_notify_change()")
