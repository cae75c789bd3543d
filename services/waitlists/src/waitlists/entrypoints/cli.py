"""Command line of the waitlists service: ``python -m waitlists migrate|serve|rebuild``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from send_shared.db import create_engine
from send_shared.events.topics import Topics
from send_shared.service import service_cli
from waitlists.settings import WaitlistsSettings


def rebuild(settings: WaitlistsSettings) -> None:
    from waitlists.service_layer.rebuild import rebuild as run

    async def main() -> None:
        engine = create_engine(settings.database_url)
        try:
            report = await run(
                engine, bootstrap_servers=settings.kafka_bootstrap_servers, topic=Topics.REFERRAL_EVENTS,
            )  # fmt: skip
        finally:
            await engine.dispose()
        print(json.dumps({"events": report.events, "skipped": report.skipped, "seconds": round(report.seconds, 2)}))

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    from waitlists.bootstrap import build_app

    service_cli(
        argv,
        prog="waitlists",
        description="SEND waitlists service",
        settings_factory=WaitlistsSettings,
        app_factory=build_app,
        migrations=Path(__file__).resolve().parents[1] / "migrations",
        extra={"rebuild": ("replay the referral topic into emptied projection tables (consumer stopped)", rebuild)},
    )
