"""Waitlists service configuration (environment variables; see send_shared.settings for the common ones)."""

from __future__ import annotations

import os

from pydantic import Field

from send_shared.settings import ServiceSettings


class WaitlistsSettings(ServiceSettings):
    service_name: str = "waitlists"
    http_port: int = 8002
    database_url: str = "sqlite+aiosqlite:///var/waitlists.db"
    alert_lead_days: int = Field(7, ge=1, le=60, description="How long before a breach the imminent alert fires.")
    alert_scan_seconds: float = Field(60.0, gt=0, description="How often the alert scheduler looks for due alerts.")
    gauge_refresh_seconds: float = Field(60.0, gt=0, description="How often the /metrics waiting-list gauges refresh.")
    event_source: str = Field("/send/waitlists", description="CloudEvents source of the alerts this service emits.")
    wait_window_weeks: int = Field(
        26, ge=1, le=104, description="Weeks of referrals (by submission) a predicted wait is built from."
    )
    wait_min_children: int = Field(
        20, ge=5, le=10_000, description="Fewest referrals behind a predicted wait; below it, not enough data."
    )
    rebuild_processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=64,
        description="Processes a rebuild on PostgreSQL shares the store replay's partitions between (one per core).",
    )  # fmt: skip
    wait_estimate_scan_seconds: float = Field(
        3600.0, gt=0, description="How often the estimate worker looks for services not worked out yet today."
    )
