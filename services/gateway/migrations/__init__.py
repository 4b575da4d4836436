"""Alembic history of the gateway's tables (a package only so it ships in the wheel)."""
