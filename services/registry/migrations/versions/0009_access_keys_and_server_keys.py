"""Access keys (the sealed session's PSK) and the server's Noise static keys (issue 11, ADR 0021).

Both hold secrets the registry must be able to use again, so neither is a digest: the
secret halves are AES-256-GCM ciphertext under the registry's secret key, like
credentials (0002), with the id of that key beside them.

`access_keys.revision` is the cursor of the gateways' WatchAccessKeys: every change
gives the row the next revision. A name is unique among keys not revoked (a partial
unique index), so a revoked key's name can be reused. `server_keys` has room for
rotation: states current/next/retired, at most one current (a partial unique index also
settles two replicas creating the first key at once).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(256), nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("encryption_key_id", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("expires_at", _utc(), nullable=True),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.Column("revoked_by", sa.String(256), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("revision", name="uq_access_keys_revision"),
    )
    op.create_index(
        "uq_access_keys_live_name",
        "access_keys",
        ["name"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "server_keys",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("encryption_key_id", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("activated_at", _utc(), nullable=True),
        sa.Column("retired_at", _utc(), nullable=True),
        sa.UniqueConstraint("public_key", name="uq_server_keys_public_key"),
        sa.CheckConstraint("state IN ('current', 'next', 'retired')", name="ck_server_keys_state"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_server_keys_one_current",
        "server_keys",
        ["state"],
        unique=True,
        sqlite_where=sa.text("state = 'current'"),
        postgresql_where=sa.text("state = 'current'"),
    )


def downgrade() -> None:
    op.drop_index("uq_server_keys_one_current", table_name="server_keys")
    op.drop_table("server_keys")
    op.drop_index("uq_access_keys_live_name", table_name="access_keys")
    op.drop_table("access_keys")
