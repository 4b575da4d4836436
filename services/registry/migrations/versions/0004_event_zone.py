"""Watch events carry the collector's registered zone, so gateways route by it.

The zone of older events is filled from the collector they are about, when it still
exists; events of removed collectors keep "" (no gateway routes by a removed collector).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collector_events") as batch:
        batch.add_column(sa.Column("zone", sa.String(256), nullable=False, server_default=""))
    op.execute(
        "UPDATE collector_events SET zone = "
        "COALESCE((SELECT c.zone FROM collectors c WHERE c.instance_uid = collector_events.instance_uid), '')"
    )


def downgrade() -> None:
    with op.batch_alter_table("collector_events") as batch:
        batch.drop_column("zone")
