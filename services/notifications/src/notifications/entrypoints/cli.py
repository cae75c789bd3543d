"""Command line of the notifications service: ``python -m notifications migrate|serve``."""

from __future__ import annotations

from pathlib import Path

from notifications.settings import NotificationsSettings
from send_shared.service import service_cli


def main(argv: list[str] | None = None) -> None:
    from notifications.bootstrap import build_app

    service_cli(
        argv,
        prog="notifications",
        description="SEND notifications service",
        settings_factory=NotificationsSettings,
        app_factory=build_app,
        migrations=Path(__file__).resolve().parents[1] / "migrations",
    )
