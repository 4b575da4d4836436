"""The inventory's tables and the transactions over them (SQLAlchemy 2, async)."""
