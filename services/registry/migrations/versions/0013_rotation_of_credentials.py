"""Rotation of collector credentials (issue 11 item 5, ADR 0024): access keys.

Access keys: `access_keys.replaced_by` names the key id that replaced a rotated key
(`outpostctl access-keys rotate`). The replaced row stays valid until its `expires_at`
(the overlap's end), so a name now has up to two live rows during an overlap: the
one-live-name index covers only rows not replaced.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "revoked_at IS NULL"
_LIVE_NOT_REPLACED = "revoked_at IS NULL AND replaced_by IS NULL"


def _live_name_index(where: str) -> None:
    op.create_index(
        "uq_access_keys_live_name",
        "access_keys",
        ["name"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    with op.batch_alter_table("access_keys") as batch:
        batch.add_column(sa.Column("replaced_by", sa.String(64), nullable=True))
    op.drop_index("uq_access_keys_live_name", table_name="access_keys")
    _live_name_index(_LIVE_NOT_REPLACED)


def downgrade() -> None:
    op.drop_index("uq_access_keys_live_name", table_name="access_keys")
    # Rows replaced but not yet expired would collide with their successors: revoke them first.
    op.execute(
        sa.text(
            "UPDATE access_keys SET revoked_at = CURRENT_TIMESTAMP, revoked_by = 'migration 0013 downgrade' "
            "WHERE replaced_by IS NOT NULL AND revoked_at IS NULL"
        )
    )
    with op.batch_alter_table("access_keys") as batch:
        batch.drop_column("replaced_by")
    _live_name_index(_LIVE)
