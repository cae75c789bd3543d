"""support while waiting: interim offers, each service's wait estimate as waitlists tells it, referral signposts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('interim_offers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('provider_org_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=False),
    sa.Column('needs', sa.JSON(), nullable=False),
    sa.Column('urgencies', sa.JSON(), nullable=False),
    sa.Column('min_age', sa.Integer(), nullable=True),
    sa.Column('max_age', sa.Integer(), nullable=True),
    sa.Column('contact_phone', sa.String(length=32), nullable=True),
    sa.Column('contact_email', sa.String(length=254), nullable=True),
    sa.Column('contact_url', sa.String(length=500), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_interim_offers'))
    )
    op.create_index('ix_interim_offers_service', 'interim_offers', ['service_id'], unique=False)
    op.create_table('service_wait_estimates',
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('window_weeks', sa.Integer(), nullable=False),
    sa.Column('children', sa.Integer(), nullable=True),
    sa.Column('enough_data', sa.Boolean(), nullable=False),
    sa.Column('to_support_median_days', sa.Integer(), nullable=True),
    sa.Column('to_support_p90_days', sa.Integer(), nullable=True),
    sa.Column('to_support_p90_low_days', sa.Integer(), nullable=True),
    sa.Column('to_support_p90_high_days', sa.Integer(), nullable=True),
    sa.Column('to_clock_stop_median_days', sa.Integer(), nullable=True),
    sa.Column('to_clock_stop_p90_days', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('service_id', name=op.f('pk_service_wait_estimates'))
    )
    op.create_table('referral_signposts',
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('offer_id', sa.String(length=64), nullable=False),
    sa.Column('provider_org_id', sa.String(length=64), nullable=False),
    sa.Column('trigger', sa.String(length=30), nullable=False),
    sa.Column('signposted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('taken_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('taken_up_by', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('referral_id', 'offer_id', name=op.f('pk_referral_signposts'))
    )


def downgrade() -> None:
    op.drop_table('referral_signposts')
    op.drop_table('service_wait_estimates')
    op.drop_index('ix_interim_offers_service', table_name='interim_offers')
    op.drop_table('interim_offers')
