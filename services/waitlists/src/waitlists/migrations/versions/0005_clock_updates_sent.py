"""clock_updates_sent: the fingerprint of the clocks last told of each referral (issue 17: the family view's
deadline comes from ``uk.send.waitlist.clocks_updated.v1``)

Not part of the projection: a rebuild keeps it, so unchanged clocks are never told again. Referrals held
before it existed are told of their clocks at their next change.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clock_updates_sent",
        sa.Column("referral_id", sa.String(length=36), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("referral_version", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", name=op.f("pk_clock_updates_sent")),
    )


def downgrade() -> None:
    op.drop_table("clock_updates_sent")
