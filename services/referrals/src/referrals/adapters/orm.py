"""Tables of the referrals service. Alembic migrations share this metadata."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table

from send_shared.outbox import define_outbox_table

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

referrals = Table(
    "referrals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("child_ref", String(64), nullable=False),
    Column("referrer_org_id", String(64), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("receiving_org_id", String(64), nullable=False),
    Column("urgency", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("held_from", String(20), nullable=True),
    Column("version", Integer, nullable=False),
    Column("referred_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_referrals_service_status", "service_id", "status"),
    Index("ix_referrals_referrer", "referrer_org_id"),
    Index("ix_referrals_child_ref", "child_ref"),
)

referral_history = Table(
    "referral_history",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("previous_status", String(20), nullable=True),
    Column("reason_code", String(64), nullable=True),
    Column("outcome_code", String(64), nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

outbox = define_outbox_table(metadata)
