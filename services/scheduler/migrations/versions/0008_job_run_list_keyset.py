"""Job run lists page on (created_at, id) newest first (issue 13 item 5, ADR 0027).

`jobs list` reads keyset pages ordered by (created_at, id) descending; the id makes the
order total, so a page token's position is exact. (created_at, id) serves that order and
the seek `(created_at, id) < (...)` with one backward range scan; (discovery, created_at,
id) does the same for `jobs list --discovery`. They replace the indexes on created_at and
on discovery, which are their prefixes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_job_runs_created_at_id", "job_runs", ["created_at", "id"])
    op.create_index("ix_job_runs_discovery_created_at_id", "job_runs", ["discovery", "created_at", "id"])
    op.drop_index("ix_job_runs_created_at", table_name="job_runs")
    op.drop_index("ix_job_runs_discovery", table_name="job_runs")


def downgrade() -> None:
    op.create_index("ix_job_runs_discovery", "job_runs", ["discovery"])
    op.create_index("ix_job_runs_created_at", "job_runs", ["created_at"])
    op.drop_index("ix_job_runs_discovery_created_at_id", table_name="job_runs")
    op.drop_index("ix_job_runs_created_at_id", table_name="job_runs")
