"""wait_estimates_sent: the wait estimate last sent of each service (issue 18:
``uk.send.waitlist.wait_estimate.v1``), and the day it was last worked out

Not part of the projection: a rebuild keeps it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wait_estimates_sent",
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=True),
        sa.Column("computed_on", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_wait_estimates_sent")),
    )


def downgrade() -> None:
    op.drop_table("wait_estimates_sent")
