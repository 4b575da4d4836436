"""Discovery credentials (encrypted at rest) and each collector's encryption public key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Nullable: collectors stored before this revision have no key until they announce one.
    with op.batch_alter_table("collectors") as batch:
        batch.add_column(sa.Column("encryption_public_key", sa.LargeBinary(), nullable=True))
    op.create_table(
        "credentials",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.UniqueConstraint("name", name="uq_credentials_name"),
        sa.CheckConstraint("type IN ('snmp_v2c', 'snmp_v3', 'ssh')", name="ck_credentials_type"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("credentials")
    with op.batch_alter_table("collectors") as batch:
        batch.drop_column("encryption_public_key")
