"""Round trips to PostgreSQL on the hot paths: how many each submission or consumed event makes, and which.

    python bench/round_trips.py --out bench/results/round-trips-<date>/result.json   # ingest and consumer, -n 200
    PYTHONPATH=<a ref's sources> python bench/round_trips.py --code <ref> --out ...       # another commit's code

The paths are ``bench/profile_paths.py``'s (``ingest``: submissions through the referrals app; ``consumer``:
referral events through the waitlists consumer's batch step, in partition batches of ``--batch``) and ``fanout``
(the same events through the notifications consumer's, every provider with a webhook endpoint), each after its
warm-up, so statements are prepared already. Every call on asyncpg that goes to the server and waits for its answer
is counted (a simple query such as ``BEGIN``, a prepared statement's fetch or executemany, a statement prepared
anew, a COPY), named by its verb and first table. On this machine a round trip costs the service's process
about 120 µs of CPU (its socket write alone about 26 µs) and PostgreSQL's backend its share, whatever the
statement does, so their count is a figure of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg.connection
import asyncpg.prepared_stmt

from send_devkit.testing import LOCAL_POSTGRES, PostgresServer

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from profile_paths import PATHS, SERVICE, batch_step, dataset_records, migrate, revision  # noqa: E402 - found through the path set above

COUNTED_PATHS = ("ingest", "consumer", "fanout")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|TABLE|JOIN)\s+\"?(\w+)", re.IGNORECASE)


def label(sql: str) -> str:
    """``INSERT referrals``, ``SELECT idempotency_keys``, ``WITH ... INSERT referrals``, ``BEGIN``."""
    words = sql.split()
    if not words:
        return "(empty)"
    verb = words[0].upper().rstrip(";")
    table = _TABLE.search(sql)
    return f"{verb} {table.group(1)}" if table else verb


class RoundTrips:
    """Counts asyncpg's calls that wait for the server, while ``counting`` is set."""

    def __init__(self) -> None:
        self.counting = False
        self.seen: Counter[str] = Counter()

    def install(self) -> None:
        on_connection = ("execute", "executemany", "fetch", "fetchrow", "fetchval", "_prepare", "copy_records_to_table")
        on_statement = ("fetch", "fetchrow", "fetchval", "executemany")
        for cls, names in (
            (asyncpg.connection.Connection, on_connection),
            (asyncpg.prepared_stmt.PreparedStatement, on_statement),
        ):
            for name in names:
                setattr(cls, name, self._counted(getattr(cls, name), name))

    def _counted(self, call: Callable[..., Awaitable[Any]], name: str) -> Callable[..., Awaitable[Any]]:
        seen = self

        async def counted(target: Any, *args: Any, **kwargs: Any) -> Any:
            if seen.counting:
                if isinstance(target, asyncpg.prepared_stmt.PreparedStatement):
                    sql = target.get_query()
                elif name.startswith("copy_"):
                    sql = f"COPY {args[0] if args else kwargs.get('table_name', '')}"
                else:
                    sql = args[0] if args else kwargs.get("query", "")
                seen.seen[("PREPARE " if name == "_prepare" else "") + label(str(sql))] += 1
            return await call(target, *args, **kwargs)

        return counted


async def fanout(url: str, n: int, batch: int) -> Any:
    """Referral events of the generated dataset through the notifications consumer's batch step (inbox, the fan-out
    of each event to the organisations concerned, a delivery for each webhook endpoint subscribed, the position),
    every provider organisation of the dataset having an endpoint for every referral event."""
    import itertools
    from datetime import timedelta

    import httpx
    from national import PROVIDER_KINDS, SCALES, provider_id

    from notifications.adapters.orm import inbox, positions
    from notifications.bootstrap import build_app
    from notifications.service_layer.fanout import CONSUMER_GROUP, HeldEvents
    from notifications.settings import NotificationsSettings
    from send_devkit.tokens import mint_token
    from send_shared.consumer.positions import ConsumerPositions
    from send_shared.consumer.runtime import ConsumerRuntime
    from send_shared.events.schemas import REFERRAL_EVENT_TYPES
    from send_shared.events.topics import Topics
    from send_shared.inbox import Inbox

    settings = NotificationsSettings(database_url=url, kafka_bootstrap_servers="127.0.0.1:9", run_workers=False,
                                     log_level="WARNING", webhooks_allow_private_targets=True,
                                     rate_limit_writes_per_second=0, email_enabled=False)  # fmt: skip
    app = build_app(settings)
    for step in app.state.runtime.startup:
        await step()
    engine = app.state.runtime.engine
    # The service's own consumer (its handler, its step before each commit and, in code that has one, its read-ahead
    # before a batch); only its batch step is called, so no broker is reached.
    spec = app.state.runtime.consumers[0]
    ahead: dict[str, Any] = {"before_batch": spec.before_batch} if getattr(spec, "before_batch", None) else {}
    runtime = ConsumerRuntime(bootstrap_servers="127.0.0.1:9", group_id=CONSUMER_GROUP, topics=[Topics.REFERRAL_EVENTS],
                              handler=spec.handler, before_commit=spec.before_commit, engine=engine,
                              inbox=Inbox(inbox, CONSUMER_GROUP),
                              positions=ConsumerPositions(positions, CONSUMER_GROUP), producer=None, **ahead)  # fmt: skip
    directory_events, records = dataset_records()
    apply = batch_step(runtime, batch)
    await apply(records[:directory_events])  # the directory: the organisations become known
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://trips") as http:
        for area, provider in itertools.product(range(1, SCALES["small"].areas + 1), PROVIDER_KINDS):
            org = provider_id(area, provider)
            token = {"authorization": f"Bearer {mint_token(org, 'receiver')}"}
            wanted = {"url": f"http://127.0.0.1:9/{org}", "event_types": sorted(REFERRAL_EVENT_TYPES)}
            made = await http.post("/v1/endpoints", headers=token, json=wanted)
            assert made.status_code == 201, made.text
    warm = directory_events + 50
    await apply(records[directory_events:warm])
    # The held-events worker's first look, as the service runs it: until then any event may be held, so each one
    # looks for held successors.
    stop = asyncio.Event()
    held = HeldEvents(app.state.unit_of_work, hold_limit=timedelta(seconds=settings.hold_early_events_seconds),
                      referral_link_template=settings.referral_url_template, after=lambda: None)  # fmt: skip
    looking = asyncio.create_task(held.run(stop))
    await asyncio.sleep(0.5)
    stop.set()
    await looking

    async def run() -> dict[str, Any]:
        await apply(records[warm : warm + n])
        return {"work": f"{n} referral events in batches of {batch}, fanned out", "items": n}

    return run, engine.dispose


async def counted(name: str, url: str, n: int, batch: int, trips: RoundTrips) -> dict[str, Any]:
    run, close = await (fanout if name == "fanout" else PATHS[name])(url, n, batch)
    trips.seen.clear()
    trips.counting = True
    found = await run()
    trips.counting = False
    await close()
    items = found["items"]
    each = {kind: round(count / items, 2) for kind, count in trips.seen.most_common()}
    return {"work": found["work"], "items": items, "round_trips_per_item": round(sum(trips.seen.values()) / items, 2),
            "by_statement": each}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="submissions (ingest) or events (consumer)")
    parser.add_argument("--batch", type=int, default=10, help="events per consumer transaction")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--code", help="what code ran, when not the working tree (PYTHONPATH set to a ref's sources)")
    args = parser.parse_args()
    trips = RoundTrips()
    trips.install()
    pg = PostgresServer(os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES))
    result: dict[str, Any] = {
        "code": args.code or revision(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "paths": {},
    }
    try:
        for name in COUNTED_PATHS:
            url = pg.new_database(f"trips_{name}")
            migrate(SERVICE.get(name, "notifications"), url)
            result["paths"][name] = asyncio.run(counted(name, url, args.n, args.batch, trips))
            print(name, json.dumps(result["paths"][name]), flush=True)
    finally:
        pg.drop_all()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
