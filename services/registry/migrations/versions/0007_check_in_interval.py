"""A polling collector's check-in interval, as its gateway reports it (issue 10, item 12).

The online rule gives a polling collector its own check-in interval plus grace instead of
two heartbeat intervals (`domain.collectors.online_window`); the interval is what the
collector's gateway last told it, carried in the gateway's session reports. 0 (the
default for every existing row) means a streaming session: the rule as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.add_column(sa.Column("check_in_seconds", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.drop_column("check_in_seconds")
