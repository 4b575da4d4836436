"""Device lists page on (zone, ip_sort, id) (issue 13 item 5, ADR 0027).

`devices list` reads keyset pages in the order (zone, ip_sort, id): the id makes the order
total, so a page token's position is exact. This index serves that order and the seek
`(zone, ip_sort, id) > (...)` with one range scan, with or without a zone; it replaces the
(zone, ip_sort) index, which is its prefix.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_devices_zone_ip_sort_id", "devices", ["zone", "ip_sort", "id"])
    op.drop_index("ix_devices_zone_ip_sort", table_name="devices")


def downgrade() -> None:
    op.create_index("ix_devices_zone_ip_sort", "devices", ["zone", "ip_sort"])
    op.drop_index("ix_devices_zone_ip_sort_id", table_name="devices")
