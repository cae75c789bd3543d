"""Tables of the notifications service. Alembic migrations share this metadata."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table

from send_shared.inbox import define_inbox_table

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Events that concern someone, waiting to be matched against subscriptions and delivered.
pending_notifications = Table(
    "pending_notifications",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("subject", String(64), nullable=True),
    Column("organisation_ids", String(200), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_pending_notifications_received_at", "received_at"),
)

inbox = define_inbox_table(metadata)
