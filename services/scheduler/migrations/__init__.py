"""The scheduler's Alembic history (its own, in the `scheduler` schema on PostgreSQL)."""
