"""Alembic history of the registry's tables (a package only so it ships in the wheel)."""
