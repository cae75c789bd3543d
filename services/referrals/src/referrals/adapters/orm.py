"""Tables of the referrals service. Alembic migrations share this metadata."""

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
    text,
)

from referrals.domain.lifecycle import FINAL
from send_shared.consumer.positions import define_positions_table
from send_shared.db import UtcDateTime, service_metadata
from send_shared.inbox import define_inbox_table
from send_shared.outbox import define_outbox_tables
from send_shared.store_replay import define_replay_requests_table

metadata = service_metadata()
_OPEN = text(f"status NOT IN ({', '.join(repr(status.value) for status in sorted(FINAL))})")

referrals = Table(
    "referrals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("child_ref", String(64), nullable=False),
    Column("referrer_org_id", String(64), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("receiving_org_id", String(64), nullable=False),
    Column("urgency", String(20), nullable=False),
    Column("primary_need", String(8), nullable=False),
    Column("secondary_need", String(8), nullable=True),
    Column("is_ehc", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
    Column("held_from", String(20), nullable=True),
    Column("version", Integer, nullable=False),
    Column("referred_at", UtcDateTime(), nullable=False),
    Column("status_at", UtcDateTime(), nullable=False),
    Column("linked_from_id", String(36), nullable=True),
    Column("linked_to_id", String(36), nullable=True),
    Column("parallel_referral_ids", JSON, nullable=False),
    Column("last_reason_code", String(64), nullable=True),
    Column("last_outcome_code", String(64), nullable=True),
    Column("signposted_service_id", String(64), nullable=True),
    Column("appointment_at", UtcDateTime(), nullable=True),
    Column("expected_resume", Date, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_referrals_receiving_org", "receiving_org_id", "referred_at"),
    Index("ix_referrals_referrer_org", "referrer_org_id", "referred_at"),
    Index("ix_referrals_child_service", "child_ref", "service_id"),
    # A child has one open referral at a service: two submissions that race both read none open, and the second's
    # insert meets the first's here (then runs again and answers 409).
    Index(
        "uq_referrals_open_child_service",
        "child_ref",
        "service_id",
        unique=True,
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    ),
)

# Personal data: only here, only returned to the referrer and the receiver, every read audited.
referral_people = Table(
    "referral_people",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("given_name", String(100), nullable=True),
    Column("family_name", String(100), nullable=True),
    Column("date_of_birth", Date, nullable=True),
    Column("nhs_number", String(10), nullable=True),
    Column("upn", String(13), nullable=True),
    Column("reason", Text, nullable=True),
    # How the family wants to be reached (the family view's link goes to contact_email).
    Column("contact_email", String(254), nullable=True),
    Column("contact_phone", String(32), nullable=True),
    Column("contact_preference", String(20), nullable=True),
    # Erasure (UK GDPR Article 17) blanks the names and identifiers above and keeps a tombstone: who and when.
    Column("erased_at", UtcDateTime(), nullable=True),
    Column("erased_by_org_id", String(64), nullable=True),
)

# Consent to share the referral, one row per consent event (given, changed, withdrawn); the newest is in force.
referral_consents = Table(
    "referral_consents",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("consent_version", Integer, primary_key=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("consent_status", String(20), nullable=False),
    Column("given_by", String(20), nullable=False),
    Column("scope_service_ids", JSON, nullable=False),
    Column("scope_organisation_ids", JSON, nullable=False),
    Column("note", String(500), nullable=True),  # the family's words; never leaves this service
    Column("recorded_by_org_id", String(64), nullable=True),  # null when the family recorded it themselves
    Column("recorded_via", String(20), nullable=False),  # api, import or family_view
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

# Private links to the family view. Only a hash of the token is kept; the token itself is in the email.
family_links = Table(
    "family_links",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("child_ref", String(64), nullable=False),
    Column("referral_id", String(36), nullable=False),
    Column("issued_by_org_id", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revoked_by", String(200), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Index("ix_family_links_referral", "referral_id"),
)

# Emails carrying a family link, queued in the transaction that made the link; the token is cleared once sent.
family_link_emails = Table(
    "family_link_emails",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("link_id", String(36), nullable=False),
    Column("to_address", String(254), nullable=False),
    Column("token", String(100), nullable=True),
    Column("queued_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(500), nullable=True),
    # When to try again after a failure; null once sent or given up (the token is cleared then too).
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Index("ix_family_link_emails_unsent", "sent_at", "queued_at"),
)

referral_history = Table(
    "referral_history",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("previous_status", String(20), nullable=True),
    Column("reason_code", String(64), nullable=True),
    Column("outcome_code", String(64), nullable=True),
    Column("explanation", Text, nullable=True),
    Column("linked_referral_id", String(36), nullable=True),
    Column("actor_org_id", String(64), nullable=True),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("organisation_id", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("organisation_id", String(64), nullable=False),
    Column("role", String(20), nullable=False),
    Column("action", String(40), nullable=False),
    Column("referral_id", String(36), nullable=True),
    Index("ix_audit_log_referral", "referral_id", "at"),
    Index("ix_audit_log_at", "at"),
)

organisations = Table(
    "organisations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("area_id", String(64), nullable=False),
    Column("trust_id", String(64), nullable=True),
    Column("version", Integer, nullable=False),
)

directory_services = Table(
    "directory_services",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("organisation_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("needs", JSON, nullable=False),
    Column("urgencies", JSON, nullable=False),
    Column("clocks", JSON, nullable=False),
    Column("target_days", Integer, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    # How a family reaches the service (directory data, not personal): shown on the family view.
    Column("contact_phone", String(32), nullable=True),
    Column("contact_email", String(254), nullable=True),
    Column("contact_url", String(500), nullable=True),
    Index("ix_directory_services_organisation", "organisation_id"),
)

# Each referral's clocks as waitlists last told them (uk.send.waitlist.clocks_updated.v1), for the family view's
# deadline: the newest referral_version wins. Clocks are never worked out here (waitlists holds the rules).
referral_clocks = Table(
    "referral_clocks",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("referral_version", Integer, nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("clocks", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

# Support while waiting (issue 18): each service's interim offers (directory data, never a person's).
interim_offers = Table(
    "interim_offers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("provider_org_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", String(1000), nullable=False),
    Column("needs", JSON, nullable=False),
    Column("urgencies", JSON, nullable=False),
    Column("min_age", Integer, nullable=True),
    Column("max_age", Integer, nullable=True),
    Column("contact_phone", String(32), nullable=True),
    Column("contact_email", String(254), nullable=True),
    Column("contact_url", String(500), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_interim_offers_service", "service_id"),
)

# The newest wait estimate waitlists told of each service (uk.send.waitlist.wait_estimate.v1); the latest as_of wins.
service_wait_estimates = Table(
    "service_wait_estimates",
    metadata,
    Column("service_id", String(64), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("window_weeks", Integer, nullable=False),
    Column("children", Integer, nullable=True),
    Column("enough_data", Boolean, nullable=False),
    Column("to_support_median_days", Integer, nullable=True),
    Column("to_support_p90_days", Integer, nullable=True),
    Column("to_support_p90_low_days", Integer, nullable=True),
    Column("to_support_p90_high_days", Integer, nullable=True),
    Column("to_clock_stop_median_days", Integer, nullable=True),
    Column("to_clock_stop_p90_days", Integer, nullable=True),
    Column("received_at", UtcDateTime(), nullable=False),
)

# The interim offers each referral was signposted to, and whether (when, by whom) one was taken up.
referral_signposts = Table(
    "referral_signposts",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    Column("provider_org_id", String(64), nullable=False),
    Column("trigger", String(30), nullable=False),
    Column("signposted_at", UtcDateTime(), nullable=False),
    Column("position", Integer, nullable=False),
    Column("taken_up_at", UtcDateTime(), nullable=True),
    Column("taken_up_by", String(20), nullable=True),
)

# Every event published (the store, never pruned), the publish queue and the newest record per partition.
outbox = define_outbox_tables(metadata)
# Requests for a store replay (a consumer rebuilding its projection asks for every event ever published),
# recorded by this service's one consumer, with its inbox and positions.
store_replay_requests = define_replay_requests_table(metadata)
inbox = define_inbox_table(metadata)
positions = define_positions_table(metadata)
