"""Zone enrollment tokens, and which token enrolled a collector (issue 11, ADR 0022).

`enrollment_tokens` keeps the SHA-256 of each token's secret (256 random bits need no slow
hash), its zone, its bounds (uses, expiry, source networks as a JSON array) and its
revocation. A name is unique among tokens not revoked (a partial unique index), so a
revoked token's name can be reused. `collectors.enrolled_by` names the token that
registered a collector ("enrollment-token:<name>"); "" for collectors an admin registered.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "enrollment_tokens",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(256), nullable=False),
        sa.Column("secret_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("uses_allowed", sa.Integer(), nullable=False),
        sa.Column("uses_used", sa.Integer(), nullable=False),
        sa.Column("cidrs", sa.JSON(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("expires_at", _utc(), nullable=True),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.Column("revoked_by", sa.String(256), nullable=False),
        sa.CheckConstraint("uses_used >= 0 AND uses_allowed >= 0", name="ck_enrollment_tokens_uses"),
    )
    op.create_index(
        "uq_enrollment_tokens_live_name",
        "enrollment_tokens",
        ["name"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    with op.batch_alter_table("collectors") as batch:
        batch.add_column(sa.Column("enrolled_by", sa.String(128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.drop_column("enrolled_by")
    op.drop_index("uq_enrollment_tokens_live_name", table_name="enrollment_tokens")
    op.drop_table("enrollment_tokens")
