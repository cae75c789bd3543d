"""Alembic environment of the notifications service; migrations share the models' metadata."""

from notifications.adapters.orm import metadata
from send_shared.migrations import run_alembic_env

run_alembic_env(metadata)
