"""email preferences of each organisation, and new referrals waiting for the daily digest

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 02:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('email_preferences',
    sa.Column('organisation_id', sa.String(length=64), nullable=False),
    sa.Column('new_referrals', sa.String(length=40), nullable=False),
    sa.Column('breach_alerts', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('organisation_id', name=op.f('pk_email_preferences'))
    )
    op.create_table('digest_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('organisation_id', sa.String(length=64), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('digest_date', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_digest_entries')),
    sa.UniqueConstraint('event_id', 'organisation_id', name='uq_digest_entries_event_organisation')
    )
    with op.batch_alter_table('digest_entries', schema=None) as batch_op:
        batch_op.create_index('ix_digest_entries_waiting', ['digest_date', 'recorded_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('digest_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_digest_entries_waiting')

    op.drop_table('digest_entries')
    op.drop_table('email_preferences')
