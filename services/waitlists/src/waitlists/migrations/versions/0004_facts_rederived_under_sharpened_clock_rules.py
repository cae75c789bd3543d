"""facts re-derived under the sharpened clock rules (issue 14): a hold never hides a breach, breach
dates that later holds do not move, completed as a non-treatment clock stop, same-day exceptions

No table changes shape. The fact tables are derived data, and facts derived by the earlier rules
would keep the old figures until each referral's next event; emptying them makes the start-up
backfill (``service_layer.rebuild.backfill_facts``) derive every referral's facts again, once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 01:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FACT_TABLES = ('waiting_spells', 'clock_spells', 'clock_stops', 'referral_outcomes', 'handoff_gaps')


def upgrade() -> None:
    for table in _FACT_TABLES:
        op.execute(f'DELETE FROM {table}')


def downgrade() -> None:
    # The earlier rules' facts are not kept; the start-up backfill derives facts under the rules running then.
    for table in _FACT_TABLES:
        op.execute(f'DELETE FROM {table}')
