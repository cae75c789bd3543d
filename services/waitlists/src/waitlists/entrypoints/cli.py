"""Command line of the waitlists service: ``python -m waitlists migrate|serve|rebuild``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import date
from pathlib import Path

from send_shared.consumer.exclusion import GroupBusy, GroupLock
from send_shared.db import create_engine, session_factory
from send_shared.events.topics import Topics
from send_shared.service import service_cli
from send_shared.store_replay import IncompleteReplay, delete_topic, request_replay
from waitlists.service_layer.projection import CONSUMER_GROUP
from waitlists.settings import WaitlistsSettings

REBUILD_HELP = "rebuild the projection from the referrals service's event store (consumer stopped)"
BACKTEST_HELP = "compare past predicted waits with what happened, and print the calibration as JSON"


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
    parser.add_argument("--processes", type=int, default=settings.rebuild_processes,
                        help="processes sharing the replay's partitions, on PostgreSQL (default REBUILD_PROCESSES, "
                        "one per core)")  # fmt: skip
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
                        progress=_ProgressLine(), processes=max(1, args.processes),
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


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date written YYYY-MM-DD") from exc


def backtest(settings: WaitlistsSettings, argv: list[str]) -> None:
    from waitlists.adapters.unit_of_work import SqlUnitOfWork
    from waitlists.domain.timeline import london_today
    from waitlists.domain.waits import WaitPolicy
    from waitlists.service_layer.backtest import backtest as run

    parser = argparse.ArgumentParser(
        prog="waitlists backtest",
        description="For each as_of from --from to --to every --every-weeks weeks, predict every service's wait "
        "and compare it with what happened to the children referred in the --cohort-weeks weeks after; prints "
        "the calibration (share started within the predicted p90, target about 0.9) as JSON.",
    )
    parser.add_argument("--from", dest="first", type=_date, required=True, help="first as_of, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", type=_date, required=True, help="last as_of, YYYY-MM-DD")
    parser.add_argument("--every-weeks", type=int, default=4, help="weeks between as_of dates (default 4)")
    parser.add_argument("--cohort-weeks", type=int, default=4,
                        help="weeks of referrals after each as_of to follow (default 4)")  # fmt: skip
    parser.add_argument("--observed-on", type=_date, default=None, help="the day outcomes are read on (today)")
    args = parser.parse_args(argv)
    if args.every_weeks < 1 or args.cohort_weeks < 1 or args.last < args.first:
        parser.error("--every-weeks and --cohort-weeks must be at least 1, and --to not before --from")
    policy = WaitPolicy(settings.wait_window_weeks, settings.wait_min_children)

    async def main() -> dict[str, object]:
        engine = create_engine(settings.database_url)
        try:
            result = await run(
                SqlUnitOfWork(session_factory(engine)), first=args.first, last=args.last,
                every_weeks=args.every_weeks, cohort_weeks=args.cohort_weeks,
                observed_on=args.observed_on or london_today(), policy=policy,
            )  # fmt: skip
        finally:
            await engine.dispose()
        return result.report()

    print(json.dumps(asyncio.run(main()), indent=2))


def main(argv: list[str] | None = None) -> None:
    from waitlists.bootstrap import build_app

    service_cli(
        argv,
        prog="waitlists",
        description="SEND waitlists service",
        settings_factory=WaitlistsSettings,
        app_factory=build_app,
        migrations=Path(__file__).resolve().parents[1] / "migrations",
        extra={"rebuild": (REBUILD_HELP, rebuild), "backtest": (BACKTEST_HELP, backtest)},
    )
