"""Why a queued run waits: the registry's view of its collector or zone, kept with the run.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07

Additive: runs stored before it have no reason ('' = not checked yet). The cause is kept
beside the text so a run later cancelled as missed says what held it back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("waiting_reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("waiting_cause", sa.String(32), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("waiting_cause")
        batch.drop_column("waiting_reason")
