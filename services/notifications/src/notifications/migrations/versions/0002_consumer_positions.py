"""consumer positions kept with the effects; per-referral order (versions sent on, events held)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 19:52:11.669797
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from send_shared.migrations import create_positions_table


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_positions_table(op)
    op.create_table('referral_versions',
    sa.Column('referral_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('referral_id', name=op.f('pk_referral_versions'))
    )
    op.create_table('held_events',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('referral_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('held_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_held_events'))
    )
    op.create_index('ix_held_events_referral', 'held_events', ['referral_id', 'version'], unique=False)
    op.create_index('ix_held_events_held_at', 'held_events', ['held_at'], unique=False)


def downgrade() -> None:
    op.drop_table('held_events')
    op.drop_table('referral_versions')
    op.drop_table('consumer_positions')
