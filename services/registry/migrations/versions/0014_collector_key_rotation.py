"""Rotation of a collector's identity key (issue 11 item 5, ADR 0024).

`collectors.key_rotated_at`: when the collector last replaced its Ed25519 key inside a
live sealed session (`RotateCollectorKey`); NULL: never. The key itself stays in
`public_key`/`fingerprint`, replaced in place.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.add_column(sa.Column("key_rotated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.drop_column("key_rotated_at")
