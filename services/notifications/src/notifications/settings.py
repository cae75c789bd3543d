"""Notifications service configuration (environment variables; see send_shared.settings for the common ones)."""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator

from send_shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8003
    database_url: str = "sqlite+aiosqlite:///var/notifications.db"
    event_source: str = Field("/send/notifications", description="CloudEvents source of pings this service sends.")
    webhooks_allow_private_targets: bool = Field(
        False, description="Allow webhook URLs on loopback or private addresses (development and tests only)."
    )
    webhook_secret_grace_hours: float = Field(24.0, gt=0, description="How long a rotated-out secret still signs.")
    webhook_poll_ms: int = Field(
        10_000, ge=10, le=60_000, description="Longest the dispatcher waits between looks when nothing wakes it (new "
        "deliveries and an endpoint resumed wake it, and it wakes itself for the soonest retry): the longest a "
        "delivery queued by another process's consumer waits.",
    )  # fmt: skip
    hold_early_events_seconds: float = Field(
        600.0,
        gt=0,
        description="How long a referral event that came before an earlier version waits for it before it is "
        "sent on anyway (the broker lost the earlier one and its producer is publishing it again).",
    )
    email_enabled: bool = Field(
        True, description="Send emails at all. Off, none is queued or kept for a digest, so none is sent late."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP relay (the development sink locally).")
    smtp_port: int = Field(1025, description="SMTP port (the development sink's default).")
    smtp_username: str | None = Field(None, description="Login, if the relay needs one.")
    smtp_password: SecretStr | None = Field(None, description="Password for that login.")
    smtp_starttls: bool = Field(False, description="Require STARTTLS (set true in production).")
    smtp_timeout_seconds: float = Field(10.0, gt=0, description="Timeout for connecting and for each SMTP command.")
    mail_from: str = Field("SEND referrals <no-reply@send.localhost>", description="From header of every email.")
    referral_url_template: str = Field(
        "http://127.0.0.1:8001/v1/referrals/{referral_id}",
        description="Link to a referral in the referrals API: webhooks' referrallink, for programs.",
    )
    referral_page_url_template: str = Field(
        "http://127.0.0.1:8001/referrals/{referral_id}",
        description="Link to a referral's page on the referrals service (sign-in, then plain words): in emails, for people.",
    )
    new_referral_digest_time: time = Field(
        time(8, 0),
        description="Local time of day (HH:MM) of the daily email listing each organisation's new referrals.",
    )
    new_referral_digest_timezone: str = Field(
        "Europe/London", description="IANA time zone of new_referral_digest_time."
    )

    @field_validator("new_referral_digest_time")
    @classmethod
    def _local_time(cls, at: time) -> time:
        if at.tzinfo is not None:
            raise ValueError("give the time without a zone: new_referral_digest_timezone says which")
        return at

    @field_validator("new_referral_digest_timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {zone!r}") from error
        return zone

    @model_validator(mode="after")
    def _dispatcher_looks_before_it_seems_stuck(self) -> NotificationsSettings:
        if self.webhook_poll_ms / 1000 >= self.stuck_after_seconds:
            raise ValueError("WEBHOOK_POLL_MS must be shorter than STUCK_AFTER_SECONDS")
        return self
