"""event store, publish queue and published heads; consumer positions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 20:00:00
"""

from collections.abc import Sequence

from alembic import op

from send_shared.migrations import create_positions_table, outbox_to_event_store

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_to_event_store(op)
    create_positions_table(op)


def downgrade() -> None:
    raise NotImplementedError("the event store keeps every event ever published; there is no way back")
