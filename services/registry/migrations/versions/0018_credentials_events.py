"""collector_events may record a credentials change (ADR 0034).

A collector's identity-key rotation and `collectors set-password` append an event of
kind 'credentials', so gateways that cache its verification material read it again.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = "kind IN ('state_changed', 'removed', 'credentials')"
OLD = "kind IN ('state_changed', 'removed')"


def _replace_check(condition: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table (keeping AUTOINCREMENT,
    # so a revision is never drawn twice); PostgreSQL alters it in place.
    with op.batch_alter_table("collector_events", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("ck_collector_events_kind", type_="check")
        batch.create_check_constraint("ck_collector_events_kind", condition)


def upgrade() -> None:
    _replace_check(NEW)


def downgrade() -> None:
    op.execute("DELETE FROM collector_events WHERE kind = 'credentials'")
    _replace_check(OLD)
