"""event store, publish queue and published heads; store replay requests, with an inbox and positions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from send_shared.migrations import create_positions_table, outbox_to_event_store

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_to_event_store(op)
    create_positions_table(op)
    op.create_table('inbox',
    sa.Column('consumer_group', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer_group', 'event_id', name=op.f('pk_inbox'))
    )
    op.create_index('ix_inbox_processed_at', 'inbox', ['processed_at'], unique=False)
    op.create_table('store_replay_requests',
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('topic', sa.String(length=249), nullable=False),
    sa.Column('reply_topic', sa.String(length=249), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('served_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('events', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_store_replay_requests'))
    )


def downgrade() -> None:
    raise NotImplementedError("the event store keeps every event ever published; there is no way back")
