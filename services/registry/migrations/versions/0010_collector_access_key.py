"""Which access key admitted a collector (issue 11, ADR 0019).

The gateway passes the access-key id its sealed handshake proved
(`AuthenticateCollectorRequest.access_key_id`); the registry records it on the collector's
row when it first announces itself and on every accepted connection, so an admin can see
which key a collector uses before revoking one. Empty for rows from before sealed
sessions, until their next connection.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.add_column(sa.Column("access_key_id", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.drop_column("access_key_id")
