"""Waitlists service configuration (environment variables; see send_shared.settings for the common ones)."""

from __future__ import annotations

from pydantic import Field

from send_shared.settings import ServiceSettings


class WaitlistsSettings(ServiceSettings):
    service_name: str = "waitlists"
    http_port: int = 8002
    database_url: str = "sqlite+aiosqlite:///var/waitlists.db"
    event_source: str = Field("/send/waitlists", description="CloudEvents source of the alerts this service emits.")
