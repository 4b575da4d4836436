"""Alembic environment for the gateway's inventory: the shared online runner over its metadata."""

from outpost.db import run_alembic_env
from services.gateway.inventory.store.models import metadata

run_alembic_env(metadata)
