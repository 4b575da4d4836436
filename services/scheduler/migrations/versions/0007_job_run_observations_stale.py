"""Job runs count the observations the gateway's inventory skipped as stale (issue 10, item 3).

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
    # Runs stored before this skipped nothing that was counted: 0.
    op.add_column("job_runs", sa.Column("observations_stale", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("observations_stale")
