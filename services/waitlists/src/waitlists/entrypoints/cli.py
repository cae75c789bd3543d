"""Command line of the waitlists service: ``python -m waitlists migrate|serve|rebuild``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from send_shared.consumer.exclusion import GroupBusy, GroupLock
from send_shared.db import create_engine
from send_shared.events.topics import Topics
from send_shared.service import service_cli
from send_shared.store_replay import IncompleteReplay, delete_topic, request_replay
from waitlists.service_layer.projection import CONSUMER_GROUP
from waitlists.settings import WaitlistsSettings

REBUILD_HELP = "rebuild the projection from the referrals service's event store (consumer stopped)"


def rebuild(settings: WaitlistsSettings, argv: list[str]) -> None:
    from waitlists.adapters.projection_store import SqlProjectionStore
    from waitlists.service_layer.rebuild import RebuildRefused
    from waitlists.service_layer.rebuild import rebuild as run

    parser = argparse.ArgumentParser(
        prog="waitlists rebuild",
        description="Rebuild the projection from every event the referrals service ever published (a store "
        "replay), with the waitlists consumer stopped.",
    )
    parser.add_argument("--allow-fewer", action="store_true",
                        help="replace the projection even if the replay holds fewer referrals than it")  # fmt: skip
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for referrals to answer")
    args = parser.parse_args(argv)
    bootstrap = settings.kafka_bootstrap_servers

    async def main() -> int:
        engine = create_engine(settings.database_url)
        try:
            async with GroupLock(engine, CONSUMER_GROUP).exclusive():
                request = await request_replay(
                    bootstrap, producer="referrals", topic=Topics.REFERRAL_EVENTS, requested_by=settings.service_name,
                    partitions=settings.kafka_topic_partitions,
                )  # fmt: skip
                try:
                    report = await run(
                        SqlProjectionStore(engine), bootstrap_servers=bootstrap, reply_topic=request.reply_topic,
                        request_id=request.request_id, allow_fewer=args.allow_fewer, idle_timeout=args.wait,
                        progress=_ProgressLine(),
                    )  # fmt: skip
                finally:
                    await delete_topic(bootstrap, request.reply_topic)
        except GroupBusy:
            print(f"rebuild refused: the {CONSUMER_GROUP} consumer is running; stop it first (RUN_WORKERS=false, "
                  "or scale its workers to 0)", file=sys.stderr)  # fmt: skip
            return 2
        except (RebuildRefused, IncompleteReplay, TimeoutError) as exc:
            print(f"rebuild refused: {exc}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        print(json.dumps({"events": report.events, "skipped": report.skipped, "referrals": report.referrals,
                          "seconds": round(report.seconds, 2)}))  # fmt: skip
        return 0

    sys.exit(asyncio.run(main()))


class _ProgressLine:
    """Where a person waits: one line on stderr that counts up on a terminal, a line a second otherwise (the
    JSON report on stdout stays the only output a script reads)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.started = self.shown = time.monotonic()

    def __call__(self, step: str, count: int) -> None:
        now = time.monotonic()
        if step == "read":
            text = f"reading the store replay: {count:,} events ({count / max(now - self.started, 1e-9):,.0f}/s)"
        else:
            text = f"writing the projection: {count:,} referrals"
        if self.tty:
            print(f"\r{text}", end="\n" if step != "read" else "", file=sys.stderr, flush=True)
        elif step != "read" or now - self.shown >= 1:
            self.shown = now
            print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    from waitlists.bootstrap import build_app

    service_cli(
        argv,
        prog="waitlists",
        description="SEND waitlists service",
        settings_factory=WaitlistsSettings,
        app_factory=build_app,
        migrations=Path(__file__).resolve().parents[1] / "migrations",
        extra={"rebuild": (REBUILD_HELP, rebuild)},
    )
