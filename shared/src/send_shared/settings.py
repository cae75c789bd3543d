"""Configuration common to every service, read from the environment (pydantic-settings).

Each service subclasses :class:`ServiceSettings` and sets its own defaults
(name, port, SQLite file). Every field maps to an upper-case environment
variable of the same name, e.g. ``DATABASE_URL`` or ``KAFKA_BOOTSTRAP_SERVERS``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from send_shared.kafka_connection import KafkaConnection

MIN_HS256_SECRET_BYTES = 32  # RFC 7518 section 3.2: a key at least as long as the hash output
DEV_JWT_SECRET = "dev-only-jwt-secret-do-not-use-in-production-0123456789"  # noqa: S105 - refused in production


class ServiceSettings(KafkaConnection):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = Field(description="Logical service name; used in logs, traces and the CloudEvents source.")
    environment: Literal["development", "test", "production"] = Field(
        "development", description="production turns on strict checks (https webhooks, no dev tokens)."
    )
    http_host: str = Field("127.0.0.1", description="Interface the HTTP API binds to.")
    http_port: int = Field(description="Port of the HTTP API.")
    database_url: str = Field(
        description="SQLAlchemy async URL: postgresql+asyncpg://user@host:5432/db or sqlite+aiosqlite:///var/x.db"
    )
    db_pool_size: int = Field(
        20, ge=1, description="Connections to PostgreSQL, at most: opened as needed and kept (PostgreSQL only)."
    )
    kafka_topic_partitions: int = Field(4, ge=1, description="Partitions for topics this service creates.")
    kafka_replication_factor: int = Field(1, ge=1, description="Replication factor for topics this service creates.")
    kafka_min_insync_replicas: int = Field(
        1,
        ge=1,
        description="min.insync.replicas of the topics this service creates (2 with a replication factor of 3).",
    )
    kafka_session_timeout_ms: int = Field(
        10_000, ge=1000, description="Consumer group session: how long a dead member keeps its partitions."
    )
    kafka_heartbeat_interval_ms: int = Field(3_000, ge=100, description="Consumer group heartbeat interval.")
    broker_check_seconds: float = Field(
        3.0,
        gt=0,
        le=10,
        description="How often the service asks the broker whether it still holds what it was given "
        "(topics, the newest records published and applied); a loss is noticed within this time and a probe.",
    )
    stuck_after_seconds: float = Field(
        30.0, gt=0, description="A consumer partition, the publish queue or a worker that makes no progress "
        "for this long makes readiness fail.",
    )  # fmt: skip
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector endpoint, e.g. http://otel-collector:4318. Unset: spans are not recorded "
        "(their trace and span ids still go into logs and the headers passed on).",
    )
    log_level: str = Field("INFO", description="Root log level.")
    access_log: bool = Field(True, description="Log one JSON line per HTTP request (probes and scrapes excepted).")
    max_request_bytes: int = Field(
        1_048_576, ge=1024, description="Larger request bodies are refused with 413 (CSV imports have their own limit)."
    )
    run_workers: bool = Field(True, description="Run the outbox relay and consumers inside the API process.")
    outbox_poll_interval_ms: int = Field(
        200, ge=10, le=200, description="Longest the relay sleeps between looks at the outbox when it cannot hear "
        "commits (SQLite, or while its PostgreSQL listening connection is being made again).",
    )  # fmt: skip
    outbox_safety_poll_seconds: float = Field(
        10.0, gt=0, le=60, description="On PostgreSQL, where each commit's notification wakes the relay: how long it "
        "waits for one before looking anyway (the longest a missed notification delays an event).",
    )  # fmt: skip
    outbox_batch_size: int = Field(500, ge=1, le=10_000, description="Rows the relay claims per transaction.")
    outbox_linger_ms: int = Field(
        0, ge=0, le=100, description="Once a commit wakes the relay, how long it waits for more to publish with it "
        "(as Kafka's linger.ms): fewer, larger cycles for that much more latency. Off by default: commits that come "
        "during a cycle are published together by the next one anyway, and 5 ms showed no saving in CPU here while "
        "adding its wait to every event at a light load.",
    )  # fmt: skip
    outbox_retention_days: int = Field(7, ge=1, description="Sent outbox rows older than this are deleted.")
    inbox_retention_days: int = Field(
        14, ge=7, description="Processed event ids kept for de-duplication; must exceed any replay window."
    )
    consumer_linger_ms: int = Field(
        0, ge=0, le=100, description="How long a consumer gathers messages after a fetch returns some, to apply them "
        "in one transaction (up to a full fetch): fewer, fuller transactions for up to that much more latency.",
    )  # fmt: skip
    consumer_max_attempts: int = Field(5, ge=1, description="Handler attempts before a message is dead-lettered.")
    consumer_backoff_initial_ms: int = Field(200, ge=1, description="First retry delay; doubles each attempt.")
    consumer_backoff_max_ms: int = Field(5_000, ge=1, description="Ceiling of the retry delay.")

    jwt_secret: SecretStr | None = Field(
        SecretStr(DEV_JWT_SECRET), description="HS256 secret for bearer tokens (development and tests only)."
    )
    jwt_jwks_url: str | None = Field(None, description="JWKS URL of the identity provider; set in production.")
    jwt_audience: str = Field("send-referrals", description="Expected `aud` claim of bearer tokens.")
    jwt_issuer: str | None = Field(None, description="Expected `iss` claim, if set.")

    rate_limit_writes_per_second: float = Field(
        50.0, ge=0, description="Sustained writes an organisation may make per second (0: no limit)."
    )
    rate_limit_write_burst: int = Field(500, ge=1, description="Writes an organisation may make at once.")
    rate_limit_reads_per_second: float = Field(
        100.0, ge=0, description="Sustained reads an organisation may make per second (0: no limit)."
    )
    rate_limit_read_burst: int = Field(1_000, ge=1, description="Reads an organisation may make at once.")
    api_docs: bool | None = Field(
        None,
        description="Serve /docs and /redoc (default: on, except in production). /openapi.json is always served.",
    )
    oidc_issuer: str | None = Field(
        None, description="OpenID Connect issuer for browser sign-in (discovery at /.well-known/openid-configuration)."
    )
    oidc_client_id: str | None = Field(None, description="This service's client id at the identity provider.")
    oidc_client_secret: SecretStr | None = Field(None, description="Client secret, if the provider gave one.")
    oidc_scope: str = Field("openid", description="Scopes asked for at sign-in.")
    public_url: str | None = Field(
        None, description="Public base URL of this service, e.g. https://waitlists.example.org (sign-in callbacks)."
    )
    metrics_token: SecretStr | None = Field(
        None, description="When set, /metrics asks for `Authorization: Bearer <token>` (Prometheus bearer_token)."
    )

    @model_validator(mode="after")
    def _signin_is_complete(self) -> ServiceSettings:
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("OIDC_ISSUER needs OIDC_CLIENT_ID")
        return self

    @model_validator(mode="after")
    def _waits_shorter_than_stuck(self) -> ServiceSettings:
        """A worker that waits longer than the stuck threshold between looks would turn readiness red while
        nothing is wrong."""
        if self.outbox_safety_poll_seconds >= self.stuck_after_seconds:
            raise ValueError("OUTBOX_SAFETY_POLL_SECONDS must be shorter than STUCK_AFTER_SECONDS")
        return self

    @model_validator(mode="after")
    def _production_needs_real_keys(self) -> ServiceSettings:
        if self.environment != "production" or self.jwt_jwks_url is not None:
            return self
        secret = b"" if self.jwt_secret is None else self.jwt_secret.get_secret_value().encode()
        if secret == DEV_JWT_SECRET.encode():
            raise ValueError("production refuses the development JWT_SECRET; set JWT_JWKS_URL or a secret of its own")
        if len(secret) < MIN_HS256_SECRET_BYTES:
            raise ValueError(
                f"production needs JWT_JWKS_URL, or a JWT_SECRET of at least {MIN_HS256_SECRET_BYTES} bytes for HS256"
            )
        return self

    @property
    def serves_api_docs(self) -> bool:
        return self.environment != "production" if self.api_docs is None else self.api_docs
