"""Tables of the notifications service. Alembic migrations share this metadata."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from send_shared.consumer.positions import define_positions_table
from send_shared.db import UtcDateTime, service_metadata
from send_shared.inbox import define_inbox_table

metadata = service_metadata()
_ID = BigInteger().with_variant(Integer, "sqlite")

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("organisation_id", String(64), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("description", String(500), nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("service_ids", JSON, nullable=False),
    Column("urgencies", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("disabled_reason", String(200), nullable=True),
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100), nullable=True),
    Column("previous_secret_expires_at", UtcDateTime(), nullable=True),
    Column("failing_since", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_endpoints_organisation", "organisation_id"),
)

# Every event that concerned someone, as it will be sent (structured CloudEvent, no personal data).
messages = Table(
    "messages",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("order_key", String(64), nullable=False),
    Column("organisation_ids", JSON, nullable=False),
    Column("body", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("round", Integer, nullable=False),
    Column("order_key", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("succeeded_at", UtcDateTime(), nullable=True),
    UniqueConstraint("endpoint_id", "event_id", "round", name="uq_deliveries_endpoint_event_round"),
    Index("ix_deliveries_endpoint_status", "endpoint_id", "status", "id"),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, nullable=False),
    Column("endpoint_id", String(40), nullable=False),
    Column("attempted_at", UtcDateTime(), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("error", String(500), nullable=True),
    Column("response_excerpt", Text, nullable=True),
    Index("ix_delivery_attempts_endpoint", "endpoint_id", "attempted_at"),
    Index("ix_delivery_attempts_delivery", "delivery_id"),
)

# Where each organisation wants email (SENCOs, agency duty inboxes); managed by the organisation itself.
contacts = Table(
    "contacts",
    metadata,
    Column("organisation_id", String(64), primary_key=True),
    Column("emails", JSON, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Names of services, from directory events, for readable emails.
service_names = Table(
    "service_names",
    metadata,
    Column("service_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
)

# Organisations in the directory, from directory events: a caller's token must name one of them.
organisations = Table(
    "organisations",
    metadata,
    Column("organisation_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)

# Emails to send, queued in the consumer's transaction and sent by the mail worker.
emails = Table(
    "emails",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("organisation_id", String(64), nullable=False),
    Column("template", String(40), nullable=False),
    Column("context", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    UniqueConstraint("event_id", "organisation_id", "template", name="uq_emails_event_organisation_template"),
    Index("ix_emails_due", "status", "next_attempt_at"),
)

# What each organisation wants emailed (email_preferences.py); an organisation without a row has the defaults.
email_preferences = Table(
    "email_preferences",
    metadata,
    Column("organisation_id", String(64), primary_key=True),
    Column("new_referrals", String(40), nullable=False),
    Column("breach_alerts", Boolean, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# New referrals waiting for their organisation's daily digest; digest_date says which digest took them.
digest_entries = Table(
    "digest_entries",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("organisation_id", String(64), nullable=False),
    Column("context", JSON, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("digest_date", Date, nullable=True),
    UniqueConstraint("event_id", "organisation_id", name="uq_digest_entries_event_organisation"),
    Index("ix_digest_entries_waiting", "digest_date", "recorded_at"),
)

# Per referral, the last version sent on to endpoints and email; and versions that came early, held
# until the versions before them are in (domain/ordering.py).
referral_versions = Table(
    "referral_versions",
    metadata,
    Column("referral_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)
held_events = Table(
    "held_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("referral_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event", JSON, nullable=False),
    Column("held_at", UtcDateTime(), nullable=False),
    Index("ix_held_events_referral", "referral_id", "version"),
    Index("ix_held_events_held_at", "held_at"),
)

# Per referral, the family's consent in force as the consent events tell it (the newest consent_version wins):
# while it is withdrawn only the receiving organisation hears about the referral (domain/subscriptions.py).
consents = Table(
    "consents",
    metadata,
    Column("referral_id", String(64), primary_key=True),
    Column("consent_version", Integer, nullable=False),
    Column("consent_status", String(16), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

inbox = define_inbox_table(metadata)
positions = define_positions_table(metadata)
