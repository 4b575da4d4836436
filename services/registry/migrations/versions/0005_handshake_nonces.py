"""Challenge nonces are single-use: accepted ones are kept until they go stale.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handshake_nonces",
        sa.Column("nonce", sa.String(128), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_handshake_nonces_expires_at", "handshake_nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_handshake_nonces_expires_at", table_name="handshake_nonces")
    op.drop_table("handshake_nonces")
