"""The scheduler's tables and the queries over them (SQLAlchemy 2, async)."""
