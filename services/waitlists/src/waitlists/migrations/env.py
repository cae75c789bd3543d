"""Alembic environment of the waitlists service; migrations share the models' metadata."""

from send_shared.migrations import run_alembic_env
from waitlists.adapters.orm import metadata

run_alembic_env(metadata)
