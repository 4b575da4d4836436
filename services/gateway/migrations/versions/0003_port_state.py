"""A port's state: open, closed or filtered (as `nmap -sT` names them), beside the `open` flag.

Until now a port was open or not, and a port that did not answer in time was recorded as
closed. Existing rows keep what they said: open -> "open", not open -> "closed". The `open`
column stays and is kept equal to state = "open", so a replica not yet upgraded (and a
downgrade) still reads the open ports right.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("device_ports", sa.Column("state", sa.String(16), nullable=False, server_default="open"))
    op.execute("UPDATE device_ports SET state = CASE WHEN \"open\" THEN 'open' ELSE 'closed' END")


def downgrade() -> None:
    with op.batch_alter_table("device_ports") as batch:
        batch.drop_column("state")
