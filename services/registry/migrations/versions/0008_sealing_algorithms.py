"""The sealed-secret algorithms each collector opens (issue 11 item 6, ADR 0020).

A collector lists them in its hello; the registry seals credentials with HPKE only to one
that lists it, with the legacy algorithm otherwise. NULL (every existing row, and every
collector older than HPKE) means none listed: the legacy algorithm.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.add_column(sa.Column("sealing_algorithms", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.drop_column("sealing_algorithms")
