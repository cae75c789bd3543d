"""Tables of the waitlists service. Alembic migrations share this metadata."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table

from send_shared.inbox import define_inbox_table
from send_shared.outbox import define_outbox_table

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

referral_states = Table(
    "referral_states",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("child_ref", String(64), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("receiving_org_id", String(64), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("status_since", DateTime(timezone=True), nullable=False),
    Index("ix_referral_states_service_status", "service_id", "status"),
)

inbox = define_inbox_table(metadata)
outbox = define_outbox_table(metadata)
