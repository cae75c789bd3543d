"""Command line of the referrals service: ``python -m referrals migrate|serve``."""

from __future__ import annotations

from pathlib import Path

from referrals.settings import ReferralsSettings
from send_shared.service import service_cli


def main(argv: list[str] | None = None) -> None:
    from referrals.bootstrap import build_app

    service_cli(
        argv,
        prog="referrals",
        description="SEND referrals service",
        settings_factory=ReferralsSettings,
        app_factory=build_app,
        migrations=Path(__file__).resolve().parents[1] / "migrations",
    )
