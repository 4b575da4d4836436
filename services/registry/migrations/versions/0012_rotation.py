"""Rotation without downtime (issue 11 item 5, ADR 0024): how long a replaced server key is accepted.

`server_keys.retires_at` is set on the current key when its successor is announced
(`outpostctl server rotate-key`): the successor's activation time plus the window. A
key's state follows from its times (`domain.server_keys.effective`), so replicas and
gateways agree without a timer flipping rows.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("server_keys") as batch:
        batch.add_column(sa.Column("retires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("server_keys") as batch:
        batch.drop_column("retires_at")
