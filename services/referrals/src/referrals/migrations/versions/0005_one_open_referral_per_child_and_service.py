"""one open referral per child and service, kept by a partial unique index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The final statuses when this was written (referrals.domain.lifecycle.FINAL): a migration keeps its own copy.
_OPEN = sa.text("status NOT IN ('completed', 'entered_in_error', 'handed_off', 'rejected', 'withdrawn')")


def upgrade() -> None:
    op.create_index('uq_referrals_open_child_service', 'referrals', ['child_ref', 'service_id'], unique=True,
                    postgresql_where=_OPEN, sqlite_where=_OPEN)


def downgrade() -> None:
    op.drop_index('uq_referrals_open_child_service', table_name='referrals')
