"""Prometheus instruments of the shared machinery (low-cardinality labels only)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PUBLISHED = Counter("outbox_published_events", "Events the relay published to Kafka.", ["topic"])
OUTBOX_RELAY_CYCLES = Counter(
    "outbox_relay_cycles",
    "Relay cycles that finished (each one transaction: BEGIN, shard locks, claim, mark sent, COMMIT), by whether they "
    "published anything; outbox_published_events over the published ones is the events a cycle carries.",
    ["outcome"],
)
OUTBOX_PUBLISH_FAILURES = Counter("outbox_publish_failures", "Relay cycles that failed and were retried.")
OUTBOX_COMMIT_TO_PUBLISH = Histogram(
    "outbox_commit_to_publish_seconds",
    "Time from the outbox row's insert to the broker's acknowledgement.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_MESSAGES = Counter(
    "consumer_messages", "Messages a consumer group finished with, by outcome.", ["group", "topic", "outcome"]
)
CONSUMER_HANDLE_SECONDS = Histogram(
    "consumer_handle_seconds",
    "Handler time per message, retries included.",
    ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30),
)
CONSUMER_RETRIES = Counter("consumer_retries", "Handler attempts that failed and were retried.", ["group"])
CONSUMER_LAG = Gauge(
    "consumer_lag",
    "Records on the partition after the last one the group applied (from the partition's end and the group's "
    "position in its database).",
    ["group", "topic", "partition"],
)
CONSUMER_OLDEST_UNREAD_AGE = Gauge(
    "consumer_oldest_unread_age_seconds", "Age of the oldest record the group has not yet applied.", ["group"]
)
CONSUMER_VERSION_GAPS = Counter(
    "consumer_version_gaps",
    "Referral events that arrived while an earlier version of the same referral was still missing.",
    ["group"],
)
WORKER_RESTARTS = Counter("worker_restarts", "Background workers restarted after a crash.", ["worker"])
READINESS_PART_OK = Gauge(
    "readiness_part_ok",
    "1 when a part of the service (worker, consumer, outbox, broker state) reports itself fine to /readyz, 0 when it "
    "is stuck, healing or failing; set at each scrape. The database and broker checks of /readyz are not included.",
    ["part"],
)
HTTP_REQUESTS = Counter("http_requests", "HTTP requests served.", ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "http_request_seconds",
    "HTTP request latency.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
