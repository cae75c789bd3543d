"""Alembic environment of the referrals service; migrations share the models' metadata."""

from referrals.adapters.orm import metadata
from send_shared.migrations import run_alembic_env

run_alembic_env(metadata)
