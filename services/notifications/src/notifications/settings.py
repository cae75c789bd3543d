"""Notifications service configuration (environment variables; see send_shared.settings for the common ones)."""

from __future__ import annotations

from send_shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8003
    database_url: str = "sqlite+aiosqlite:///var/notifications.db"
