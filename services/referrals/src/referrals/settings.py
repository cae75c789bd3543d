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

    @model_validator(mode="after")
    def _production_needs_its_own_key(self) -> ReferralsSettings:
        key = self.child_ref_key.get_secret_value()
        if self.environment == "production" and (key == DEV_CHILD_REF_KEY or len(key) < 32):
            raise ValueError("production needs a CHILD_REF_KEY of its own, at least 32 characters")
        return self
