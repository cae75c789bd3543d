"""Command line of the waitlists service: ``python -m waitlists migrate|serve``."""

from __future__ import annotations

from pathlib import Path

from send_shared.service import service_cli
from waitlists.settings import WaitlistsSettings


def main(argv: list[str] | None = None) -> None:
    from waitlists.bootstrap import build_app

    service_cli(
        argv,
        prog="waitlists",
        description="SEND waitlists service",
        settings_factory=WaitlistsSettings,
        app_factory=build_app,
        migrations=Path(__file__).resolve().parents[1] / "migrations",
    )
