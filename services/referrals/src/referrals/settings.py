"""Referrals service configuration (environment variables; see send_shared.settings for the common ones)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from send_shared.settings import ServiceSettings

DEV_CHILD_REF_KEY = "dev-only-child-reference-key-change-me"


class ReferralsSettings(ServiceSettings):
    service_name: str = "referrals"
    http_port: int = 8001
    database_url: str = "sqlite+aiosqlite:///var/referrals.db"
    child_ref_key: SecretStr = Field(
        SecretStr(DEV_CHILD_REF_KEY),
        description="Key of the keyed hash that turns an NHS number or UPN into the pseudonymous child reference.",
    )
    max_import_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="Largest CSV import accepted (413 above).")
    seed_directory: bool = Field(True, description="Load the seed directory into an empty directory at start.")
    event_source: str = Field("/send/referrals", description="CloudEvents source of the events this service emits.")
    # The family view (issue 17): links emailed to families, and the page they open.
    family_view_url_template: str = Field(
        "http://127.0.0.1:8001/family/{token}",
        description="The family's page; the link emailed to a family, with its {token}.",
    )
    family_email_enabled: bool = Field(True, description="Send the emails carrying family links at all.")
    family_view_per_ip_per_minute: float = Field(
        30, ge=0, description="Family pages one client address may open a minute (0: no limit)."
    )
    family_view_per_link_per_minute: float = Field(
        20, ge=0, description="Times one family link may be used a minute (0: no limit)."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP relay for family link emails (the development sink locally).")
    smtp_port: int = Field(1025, description="SMTP port (the development sink's default).")
    smtp_username: str | None = Field(None, description="Login, if the relay needs one.")
    smtp_password: SecretStr | None = Field(None, description="Password for that login.")
    smtp_starttls: bool = Field(False, description="Require STARTTLS (set true in production).")
    smtp_timeout_seconds: float = Field(10.0, gt=0, description="Timeout for connecting and for each SMTP command.")
    signpost_wait_weeks: int = Field(
        12,
        ge=0,
        le=520,
        description="Accepting a referral signposts it to interim offers when its service's predicted wait to "
        "support (9 in 10 children start within it) is over this many weeks.",
    )
    mail_from: str = Field("SEND referrals <no-reply@send.localhost>", description="From header of family link emails.")

    @model_validator(mode="after")
    def _production_needs_its_own_key(self) -> ReferralsSettings:
        key = self.child_ref_key.get_secret_value()
        if self.environment == "production" and (key == DEV_CHILD_REF_KEY or len(key) < 32):
            raise ValueError("production needs a CHILD_REF_KEY of its own, at least 32 characters")
        if "{token}" not in self.family_view_url_template:
            raise ValueError("FAMILY_VIEW_URL_TEMPLATE needs a {token} placeholder")
        return self
