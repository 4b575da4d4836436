"""Collector lists page on (name, instance_uid), optionally within a zone (issue 13 item 5, ADR 0027).

`collectors list` reads keyset pages ordered by (name, instance_uid); the unique name
index serves the whole list, and (zone, name, instance_uid) serves `--zone` with one range
scan per page.

Numbered 0016 because 0015 was reserved for concurrent work on collector authentication;
it revises 0014, the head when it was written: if 0015 lands first, point this at it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_collectors_zone_name_instance_uid", "collectors", ["zone", "name", "instance_uid"])


def downgrade() -> None:
    op.drop_index("ix_collectors_zone_name_instance_uid", table_name="collectors")
