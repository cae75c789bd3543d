"""Tables of the waitlists service, all built from events. Alembic migrations share this metadata."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Date, Index, Integer, String, Table

from send_shared.consumer.positions import define_positions_table
from send_shared.db import UtcDateTime, service_metadata
from send_shared.inbox import define_inbox_table
from send_shared.outbox import define_outbox_tables

metadata = service_metadata()


# One row per referral: the facts every event repeats.
referrals = Table(
    "referrals",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("child_ref", String(64), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("receiving_org_id", String(64), nullable=False),
    Column("referrer_org_id", String(64), nullable=False),
    Column("urgency", String(20), nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("latest_status", String(20), nullable=False),
    # DfE SEN need codes; null in rows projected before 0007. Last, as the migration adds them, so that a
    # rebuilt table has the columns of a migrated one in the same order.
    Column("primary_need", String(8), nullable=True),
    Column("secondary_need", String(8), nullable=True),
    Index("ix_referrals_service", "service_id"),
    Index("ix_referrals_child", "child_ref"),
)

# Every status change, by business date; events may arrive in any order and fold by version.
referral_changes = Table(
    "referral_changes",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("status", String(20), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("reason_code", String(64), nullable=True),
    Column("outcome_code", String(64), nullable=True),
)

services = Table(
    "services",
    metadata,
    Column("service_id", String(64), primary_key=True),
    Column("organisation_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("clocks", JSON, nullable=False),
    Column("target_days", Integer, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_services_organisation", "organisation_id"),
)

organisations = Table(
    "organisations",
    metadata,
    Column("organisation_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("area_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_organisations_area", "area_id"),
)

# Date-ranged facts derived from each referral's timeline (domain/facts.py): every figure for a
# date is a count over the rows valid on it. Rebuilt for a child whenever any referral of theirs
# changes, and for a service's referrals when its clocks change. Open ends are 9999-12-31.
# On PostgreSQL the indexes carry every column the reads need (INCLUDE), so a figure is read
# from the index alone: a service's rows are scattered over the table in the order children came.
waiting_spells = Table(
    "waiting_spells",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date, nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("child_ref", String(64), nullable=False),
    Column("waiting_since", Date, nullable=True),
    Column("paused_days", Integer, nullable=True),
    Index(
        "ix_waiting_spells_service_to",
        "service_id",
        "valid_to",
        postgresql_include=["valid_from", "waiting_since", "paused_days", "child_ref"],
    ),
)

clock_spells = Table(
    "clock_spells",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("clock", String(32), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date, nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("breach_on", Date, nullable=True),
    Column("exception", Boolean, nullable=False),
    Index(
        "ix_clock_spells_service_to",
        "service_id",
        "valid_to",
        postgresql_include=["valid_from", "clock", "breach_on", "exception"],
    ),
    Index("ix_clock_spells_to_breach", "valid_to", "breach_on"),
)

clock_stops = Table(
    "clock_stops",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("clock", String(32), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("stopped_on", Date, nullable=False),
    Column("outcome", String(8), nullable=False),
    Column("exception", Boolean, nullable=False),
    Index(
        "ix_clock_stops_service_on", "service_id", "stopped_on", postgresql_include=["clock", "outcome", "exception"]
    ),
)
# Exceptions are counted over all time; the few stops that are exceptions have an index of their own.
Index(
    "ix_clock_stops_exceptions",
    clock_stops.c.service_id,
    clock_stops.c.stopped_on,
    postgresql_where=clock_stops.c.exception,
    sqlite_where=clock_stops.c.exception,
)

referral_outcomes = Table(
    "referral_outcomes",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("submitted_on", Date, nullable=False),
    Column("started_on", Date, nullable=True),
    Column("closed_on", Date, nullable=True),
    Column("closed_status", String(20), nullable=True),
    Column("closed_reason", String(64), nullable=True),
    Column("before_support", Boolean, nullable=False),
    Index("ix_referral_outcomes_submitted", "service_id", "submitted_on"),
    Index("ix_referral_outcomes_started", "service_id", "started_on"),
    Index(
        "ix_referral_outcomes_closed",
        "service_id",
        "closed_on",
        postgresql_include=["closed_status", "closed_reason", "before_support"],
    ),
)

handoff_gaps = Table(
    "handoff_gaps",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("closed_on", Date, nullable=False),
    Index("ix_handoff_gaps_service_closed", "service_id", "closed_on", postgresql_include=["opened_on"]),
)

FACT_TABLES = (waiting_spells, clock_spells, clock_stops, referral_outcomes, handoff_gaps)

# Alerts already published: each (referral, clock, kind) fires once.
alerts_sent = Table(
    "alerts_sent",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("clock", String(32), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("breach_date", Date, nullable=False),
    Column("sent_at", UtcDateTime(), nullable=False),
)

# The clocks last told of each referral (``uk.send.waitlist.clocks_updated.v1``), as a fingerprint: told again
# only when they differ. Not part of the projection: a rebuild keeps it, so it tells nothing twice.
clock_updates_sent = Table(
    "clock_updates_sent",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("fingerprint", String(32), nullable=False),
    Column("referral_version", Integer, nullable=False),
    Column("sent_at", UtcDateTime(), nullable=False),
)

# The wait estimate last sent of each service (``uk.send.waitlist.wait_estimate.v1``), as a fingerprint, and the
# day it was last worked out: worked out at most daily, sent only when it changed. Not part of the projection.
wait_estimates_sent = Table(
    "wait_estimates_sent",
    metadata,
    Column("service_id", String(64), primary_key=True),
    Column("fingerprint", String(32), nullable=True),
    Column("computed_on", Date, nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
)

inbox = define_inbox_table(metadata)
positions = define_positions_table(metadata)
# Every alert published (the store, never pruned), the publish queue and the newest record per partition.
outbox = define_outbox_tables(metadata)
