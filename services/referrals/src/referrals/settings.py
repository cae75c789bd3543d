"""Referrals service configuration (environment variables; see send_shared.settings for the common ones)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from send_shared.settings import ServiceSettings


class ReferralsSettings(ServiceSettings):
    service_name: str = "referrals"
    http_port: int = 8001
    database_url: str = "sqlite+aiosqlite:///var/referrals.db"
    child_ref_key: SecretStr = Field(
        SecretStr("dev-only-child-reference-key-change-me"),
        description="Key of the keyed hash that turns an NHS number or UPN into the pseudonymous child reference.",
    )
    max_import_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="Largest CSV import accepted (413 above).")
    seed_directory: bool = Field(True, description="Load the seed directory into an empty directory at start.")
    event_source: str = Field("/send/referrals", description="CloudEvents source of the events this service emits.")
