"""Where the time goes on the hot paths: each run in this process under cProfile, on the local PostgreSQL.

    python bench/profile_paths.py --path all                 # ingest, consumer and rebuild
    python bench/profile_paths.py --path ingest -n 500

- ingest: N valid referral submissions through the referrals app (``httpx.ASGITransport``: JWT, validation,
  idempotency, duplicate check, outbox), one after another, after a warm-up;
- consumer: N referral events of the generated dataset (``bench/national.py``, small scale) through the
  waitlists consumer runtime's batch step (inbox, projection, facts refreshed before commit, position), in
  partition batches of ``--batch``; the Kafka fetch is not included;
- rebuild: the waitlists rebuild (fold, fact derivation, COPY, indexes, swap) of the whole small dataset, its
  store replay read from memory instead of the broker (figure 4's bare consumer is the read's own cost).

Each writes ``bench/results/profile-<date>/<path>.txt`` (the top 40 functions by own time, then by cumulative
time) and ``<path>.json`` (wall and CPU time, and own time by package). Times are under the profiler, which
adds to every Python call: read the shares, not the absolute figures. Wall time includes waiting for
PostgreSQL (the event loop's ``select.epoll.poll``); a coroutine's calls count each time it resumes.
Run it under ``flock /tmp/heavy.lock``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import json
import os
import pstats
import random
import re
import subprocess
import sys
import sysconfig
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from send_devkit.testing import LOCAL_POSTGRES, PostgresServer

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # the bench's own modules: national, run
ROOT = BENCH.parent
TOP = 40
SITE = sysconfig.get_paths()["purelib"]
STDLIB = sysconfig.get_paths()["stdlib"]
# Own time in each place: our packages by name, third-party ones by distribution, C methods by their module.
OURS = {"referrals", "waitlists", "notifications", "send_shared"}


def revision() -> str:
    """The commit profiled, and how many tracked files the working tree had changed from it (results aside: a run
    writes its own as it goes)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    changed = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"],
                             capture_output=True, text=True)  # fmt: skip
    files = len(changed.stdout.splitlines())
    return f"{head} with {files} files changed" if files else head


def migrate(service: str, database_url: str) -> None:
    subprocess.run([sys.executable, "-m", service, "migrate"], env={**os.environ, "DATABASE_URL": database_url},
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip


Prepared = tuple[Callable[[], Awaitable[dict[str, Any]]], Callable[[], Awaitable[None]]]  # the work, then closing


async def ingest(url: str, n: int, _batch: int) -> Prepared:
    import httpx
    from run import referral_body

    from referrals.bootstrap import build_app
    from referrals.settings import ReferralsSettings
    from send_devkit.tokens import mint_token

    # No broker is reached: the relay is a worker, and workers do not run here.
    settings = ReferralsSettings(database_url=url, kafka_bootstrap_servers="127.0.0.1:9", run_workers=False,
                                 log_level="WARNING", rate_limit_writes_per_second=0)  # fmt: skip
    app = build_app(settings)
    for step in app.state.runtime.startup:  # seeds the directory, as the lifespan does
        await step()
    token = {"authorization": f"Bearer {mint_token('org-riverside-primary', 'referrer')}"}
    rng = random.Random(5)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://profile")

    async def submit(count: int) -> None:
        for _ in range(count):
            response = await http.post("/v1/referrals", json=referral_body(rng),
                                       headers={**token, "idempotency-key": uuid.uuid4().hex})  # fmt: skip
            assert response.status_code == 201, response.text

    await submit(20)  # warm-up: the first requests compile and cache statements

    async def run() -> dict[str, Any]:
        await submit(n)
        return {"work": f"{n} submissions, one after another", "items": n}

    async def close() -> None:
        await http.aclose()
        await app.state.runtime.engine.dispose()

    return run, close


def dataset_records() -> tuple[int, list[Any]]:
    """The small dataset as one partition of the referral events topic: its directory's events (how many is the
    first value), then every referral's."""
    import itertools

    from aiokafka.structs import ConsumerRecord
    from national import SCALES, directory, referral_events

    from send_shared.events.envelope import encode_kafka
    from send_shared.events.topics import Topics

    scale = SCALES["small"]
    entries = directory(scale)
    records = []
    for offset, event in enumerate(itertools.chain(entries, referral_events(scale))):
        headers, value = encode_kafka(event)
        records.append(
            ConsumerRecord(Topics.REFERRAL_EVENTS, 0, offset, 0, 0, None, value, None, 0, len(value), headers)
        )
    return len(entries), records


def batch_step(runtime: Any, batch: int) -> Callable[[list[Any]], Awaitable[None]]:
    """Applies a partition's records in batches of ``batch`` with the runtime's own step for one partition's fetched
    batch (it falls back to one by one on trouble, which fails here)."""
    from aiokafka import TopicPartition

    from send_shared.events.topics import Topics

    partition = TopicPartition(Topics.REFERRAL_EVENTS, 0)

    async def apply(chunk: list[Any]) -> None:
        for start in range(0, len(chunk), batch):
            assert await runtime._process_together([(partition, chunk[start : start + batch])])

    return apply


async def consumer(url: str, n: int, batch: int) -> Prepared:
    from send_shared.consumer.positions import ConsumerPositions
    from send_shared.consumer.runtime import ConsumerRuntime
    from send_shared.db import create_engine
    from send_shared.events.topics import Topics
    from send_shared.inbox import Inbox
    from waitlists import bootstrap
    from waitlists.adapters.orm import inbox, positions
    from waitlists.service_layer.projection import CONSUMER_GROUP

    engine = create_engine(url)
    # Built as the service builds it; only its batch step is called, so no broker is reached. Older code (measured
    # through PYTHONPATH) has no read-ahead before a batch.
    ahead: dict[str, Any] = (
        {"before_batch": bootstrap.read_referrals_ahead} if hasattr(bootstrap, "read_referrals_ahead") else {}
    )
    runtime = ConsumerRuntime(bootstrap_servers="127.0.0.1:9", group_id=CONSUMER_GROUP, topics=[Topics.REFERRAL_EVENTS],
                              handler=bootstrap.handle_referral_event, before_commit=bootstrap.refresh_facts,
                              engine=engine, inbox=Inbox(inbox, CONSUMER_GROUP),
                              positions=ConsumerPositions(positions, CONSUMER_GROUP), producer=None, **ahead)  # fmt: skip
    directory_events, records = dataset_records()
    warm = directory_events + 50
    if n > len(records) - warm:
        raise SystemExit(f"the small dataset has {len(records) - warm} referral events after the warm-up")
    apply = batch_step(runtime, batch)
    await apply(records[:warm])  # the directory, then a warm-up

    async def run() -> dict[str, Any]:
        await apply(records[warm : warm + n])
        return {"work": f"{n} referral events in batches of {batch}", "items": n}

    return run, engine.dispose


async def rebuild(url: str, _n: int, _batch: int) -> Prepared:
    from national import SCALES, directory, referral_events

    from send_shared.db import create_engine
    from send_shared.events.envelope import encode_kafka
    from waitlists.adapters.projection_store import SqlProjectionStore
    from waitlists.service_layer import rebuild as rebuilding

    engine = create_engine(url)
    scale = SCALES["small"]
    records = [encode_kafka(e) for e in itertools.chain(directory(scale), referral_events(scale))]

    async def from_memory(_bootstrap: str, _topic: str, add: Callable[[Any, bytes], None], **_: Any) -> None:
        for headers, value in records:
            add(headers, value)

    rebuilding.read_replay = from_memory  # type: ignore[assignment]

    async def run() -> dict[str, Any]:
        report = await rebuilding.rebuild(SqlProjectionStore(engine), bootstrap_servers="", reply_topic="")
        assert report.events == len(records), report
        assert report.skipped == 0, report
        return {"work": f"{report.events:,} events, {report.referrals:,} referrals (small dataset)",
                "items": report.events}  # fmt: skip

    return run, engine.dispose


PATHS = {"ingest": ingest, "consumer": consumer, "rebuild": rebuild}
SERVICE = {"ingest": "referrals", "consumer": "waitlists", "rebuild": "waitlists"}  # whose database each needs


def place(filename: str, name: str) -> str:
    """Where a function's own time is counted: our package, a third-party distribution, the standard library,
    or waiting for I/O."""
    if filename == "~":
        if "select.epoll" in name or "select.select" in name:
            return "waiting for I/O (epoll)"
        module = re.search(r"of '([A-Za-z_]+)\.", name) or re.search(r"<built-in method ([A-Za-z_]+)\.", name)
        return module.group(1) if module and module.group(1) not in {"builtins", "object"} else "builtins"
    if filename.startswith(SITE):
        return Path(filename).relative_to(SITE).parts[0].removesuffix(".py")
    for package in OURS:
        if f"/src/{package}/" in filename:
            return package
    if filename.startswith(str(BENCH)):
        return "bench (the driving loop)"
    if filename.startswith(STDLIB):
        return f"stdlib {Path(filename).relative_to(STDLIB).parts[0].removesuffix('.py')}"
    return Path(filename).name


def tidy(text: str) -> str:
    """Paths shown from the repository, site-packages or the standard library, not this machine's root."""
    return text.replace(f"{SITE}/", "").replace(f"{STDLIB}/", "").replace(f"{ROOT}/", "")


def write(name: str, profile: cProfile.Profile, summary: dict[str, Any], out: Path) -> None:
    sections = []
    for order in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(profile, stream=buffer).sort_stats(order).print_stats(TOP)
        sections.append(f"# top {TOP} by {order}\n{tidy(buffer.getvalue())}")
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    own: Counter[str] = Counter()
    for (filename, _, function), (_, _, tottime, _, _) in stats.items():
        own[place(filename, function)] += tottime
    total = sum(own.values())
    summary["own_time_by_place"] = {k: {"s": round(v, 3), "share": round(v / total, 3)} for k, v in own.most_common(20)}
    largest = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:10]
    summary["largest_own_time"] = [
        {"function": tidy(pstats.func_std_string(key)), "calls": calls, "s": round(tottime, 3),
         "share": round(tottime / total, 3)}
        for key, (_, calls, tottime, _, _) in largest
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    header = json.dumps({k: v for k, v in summary.items() if k not in ("own_time_by_place", "largest_own_time")})
    (out / f"{name}.txt").write_text(f"# bench/profile_paths.py --path {name}\n# {header}\n\n" + "\n".join(sections))
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")


async def profiled(name: str, url: str, n: int, batch: int, profile: cProfile.Profile) -> dict[str, Any]:
    """Prepares the path unprofiled, then profiles its work alone, with its wall and CPU time."""
    run, close = await PATHS[name](url, n, batch)
    wall, cpu = time.perf_counter(), time.process_time()
    profile.enable()
    found = await run()
    profile.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await close()
    return {**found, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", choices=[*PATHS, "all"], default="all")
    parser.add_argument("-n", type=int, default=500, help="submissions (ingest) or events (consumer)")
    parser.add_argument("--batch", type=int, default=10, help="events per consumer transaction (one partition's fetch)")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / f"profile-{datetime.now(UTC):%Y-%m-%d}")
    args = parser.parse_args()
    pg = PostgresServer(os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES))
    try:
        for name in PATHS if args.path == "all" else [args.path]:
            url = pg.new_database(f"profile_{name}")
            migrate(SERVICE[name], url)
            profile = cProfile.Profile()
            found = asyncio.run(profiled(name, url, args.n, args.batch, profile))
            summary = {"path": name, **found, "code": revision(),
                       "at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
            write(name, profile, summary, args.out)
            print(json.dumps(summary), flush=True)
    finally:
        pg.drop_all()
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
