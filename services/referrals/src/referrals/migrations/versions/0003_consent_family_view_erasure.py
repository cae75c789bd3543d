"""consent as events, family contact details and erasure tombstones, family view links and their emails

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('referral_consents',
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('consent_version', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('consent_status', sa.String(length=20), nullable=False),
    sa.Column('given_by', sa.String(length=20), nullable=False),
    sa.Column('scope_service_ids', sa.JSON(), nullable=False),
    sa.Column('scope_organisation_ids', sa.JSON(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('recorded_by_org_id', sa.String(length=64), nullable=True),
    sa.Column('recorded_via', sa.String(length=20), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('referral_id', 'consent_version', name=op.f('pk_referral_consents')),
    sa.UniqueConstraint('event_id', name=op.f('uq_referral_consents_event_id'))
    )
    # The consent each referral was submitted with becomes its first consent record: scope, the referral's own
    # service. Its event id is derived from the referral id; no event was published for it.
    json = "CAST({} AS JSON)" if op.get_bind().dialect.name == "postgresql" else "{}"
    own_service = json.format("""'["' || r.service_id || '"]'""")
    nothing = json.format("'[]'")
    op.execute(
        "INSERT INTO referral_consents (referral_id, consent_version, event_id, consent_status, given_by, "
        "scope_service_ids, scope_organisation_ids, note, recorded_by_org_id, recorded_via, occurred_at, recorded_at) "
        f"SELECT p.referral_id, 1, 'c1-' || substr(p.referral_id, 1, 33), 'given', p.consent_given_by, {own_service}, "
        f"{nothing}, p.consent_scope, r.referrer_org_id, 'api', p.consent_given_at, r.updated_at "
        "FROM referral_people p JOIN referrals r ON r.id = p.referral_id"
    )
    with op.batch_alter_table('referral_people') as batch:
        batch.add_column(sa.Column('contact_email', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('contact_phone', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('contact_preference', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('erased_by_org_id', sa.String(length=64), nullable=True))
        batch.alter_column('given_name', existing_type=sa.String(length=100), nullable=True)
        batch.alter_column('family_name', existing_type=sa.String(length=100), nullable=True)
        batch.alter_column('date_of_birth', existing_type=sa.Date(), nullable=True)
        batch.alter_column('reason', existing_type=sa.Text(), nullable=True)
        batch.drop_column('consent_given_by')
        batch.drop_column('consent_given_at')
        batch.drop_column('consent_scope')
    op.create_table('family_links',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('child_ref', sa.String(length=64), nullable=False),
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('issued_by_org_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=200), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_family_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_family_links_token_hash'))
    )
    op.create_index('ix_family_links_referral', 'family_links', ['referral_id'], unique=False)
    op.create_table('family_link_emails',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('link_id', sa.String(length=36), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('token', sa.String(length=100), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_family_link_emails'))
    )
    op.create_index('ix_family_link_emails_unsent', 'family_link_emails', ['sent_at', 'queued_at'], unique=False)
    # How a family reaches each service (the family view shows it): directory data, not personal.
    with op.batch_alter_table('directory_services') as batch:
        batch.add_column(sa.Column('contact_phone', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('contact_email', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('contact_url', sa.String(length=500), nullable=True))
    # Each referral's clocks as waitlists last told them (the family view's deadline).
    op.create_table('referral_clocks',
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('referral_version', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('clocks', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('referral_id', name=op.f('pk_referral_clocks'))
    )


def downgrade() -> None:
    raise NotImplementedError("consent records are part of the referral's record; there is no way back")
