"""the family's consent in force per referral, from the consent events: who still hears after a withdrawal

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consents',
    sa.Column('referral_id', sa.String(length=64), nullable=False),
    sa.Column('consent_version', sa.Integer(), nullable=False),
    sa.Column('consent_status', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('referral_id', name=op.f('pk_consents'))
    )


def downgrade() -> None:
    op.drop_table('consents')
