"""Alembic environment for the registry: the shared online runner over our metadata."""

from outpost.db import run_alembic_env
from services.registry.store.models import metadata

run_alembic_env(metadata)
