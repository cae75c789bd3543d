"""referrals: the referral's DfE SEN need codes (primary and secondary, as the referral events carry them), for time
to support by need code (issue 18)

Referrals projected before this revision keep null codes (counted as ``unknown``) until a rebuild
(``python -m waitlists rebuild``) fills them from the referrals service's event store.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("primary_need", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("secondary_need", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("secondary_need")
        batch.drop_column("primary_need")
