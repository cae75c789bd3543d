"""organisations of the directory, from its events: a caller's organisation must be one of them

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('organisations',
    sa.Column('organisation_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('organisation_id', name=op.f('pk_organisations'))
    )


def downgrade() -> None:
    op.drop_table('organisations')
