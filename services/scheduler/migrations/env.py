"""Alembic environment for the scheduler: the shared online runner over our metadata."""

from outpost.db import run_alembic_env
from services.scheduler.store.models import metadata

run_alembic_env(metadata)
