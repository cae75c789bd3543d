"""`make bench`: the figures of issue 7, each a ratio against a baseline measured in the same run or a
latency under a stated offered load. Prints a table and writes the same figures to bench/results/.

    python bench/run.py            # full run
    python bench/run.py --quick    # under 3 minutes, for everyday use
    python bench/run.py --quick --only latency,idle --baseline-tree /tmp/before --out x.json
                                   # figures 3 and 7, for this tree's services and another checkout's

Figure 7 (``7_idle``): CPU ms per second of each process of the warmed-up, idle stack: each service, the broker,
PostgreSQL's backends serving its databases and the server's shared processes, and ``all_in``. Figure 3's
``cpu_ms_per_referral`` has the same groups, per answered referral.

Runs on loopback only, bounded in count and time, with the embedded broker and the local PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import math
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import MetaData, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from send_devkit.broker import EmbeddedBroker
from send_devkit.demo import nhs_number
from send_devkit.devstack import DevStack
from send_devkit.ports import free_port
from send_devkit.testing import LOCAL_POSTGRES, PostgresServer
from send_devkit.tokens import mint_token
from send_shared.db import create_engine
from send_shared.events.envelope import CloudEvent, encode_kafka
from send_shared.events.schemas import ReferralEventV1, ReferralStatus, referral_event_type
from send_shared.kafka import OutgoingRecord, ensure_topics, fetch_to_end, new_producer, publish_all
from send_shared.outbox import OutboxRelay, OutboxWriter, define_outbox_tables
from send_shared.store_replay import send_markers

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def pct(values: list[float], p: float) -> float:
    """Nearest rank, as the product's own figures."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def events(n: int, seed: int = 1) -> list[CloudEvent]:
    """Referral events as the referrals service publishes them: submitted then accepted, per referral."""
    rng = random.Random(seed)
    found = []
    services = ["svc-camhs-core", "svc-ehc-assessment", "svc-trust-slt", "svc-trust-ed-psych"]
    for i in range(n // 2):
        referral_id = str(uuid.UUID(int=rng.getrandbits(128)))
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for version, status in ((1, ReferralStatus.SUBMITTED), (2, ReferralStatus.ACCEPTED)):
            data = ReferralEventV1(
                referral_id=referral_id, version=version, status=status, child_ref=f"{i:032x}",
                referrer_org_id="org-riverside-primary", service_id=rng.choice(services),
                receiving_org_id="org-northshire-camhs", urgency="routine", occurred_at=at, recorded_at=at,
            )  # fmt: skip
            found.append(CloudEvent(type=referral_event_type(status), source="/bench", subject=referral_id,
                                    data=data.model_dump(mode="json")))  # fmt: skip
    return found


async def relay_figure(database_url: str, bootstrap: str, n: int) -> dict[str, Any]:
    """Events/s from committed outbox rows to the topic, against a bare producer sending the same messages."""
    metadata = MetaData()
    tables = define_outbox_tables(metadata)
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    batch = events(n)
    writer = OutboxWriter(tables)
    for start in range(0, n, 1000):
        async with engine.begin() as conn:
            await writer.add_many(conn, [(e, "bench.relay.v1", e.subject or "") for e in batch[start : start + 1000]])
    await ensure_topics(bootstrap, {"bench.relay.v1": 4, "bench.bare.v1": 4})
    producer = new_producer(bootstrap, client_id="bench")
    await producer.start()
    try:
        records = []
        for e in batch:
            headers, value = encode_kafka(e)
            records.append(OutgoingRecord("bench.bare.v1", (e.subject or "").encode(), value, headers))
        started = time.perf_counter()
        for start in range(0, n, 2000):
            await publish_all(producer, records[start : start + 2000])
        bare = n / (time.perf_counter() - started)
        relay = OutboxRelay(engine, tables, producer, batch_size=2000)
        started = time.perf_counter()
        while await relay.relay_once():
            pass
        ours = n / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await engine.dispose()
    return {"events": n, "relay_events_per_s": round(ours), "bare_producer_events_per_s": round(bare),
            "ratio_relay_to_bare": round(ours / bare, 3), "target": ">= 5000 events/s per relay"}  # fmt: skip


async def bare_read(bootstrap: str, topic: str) -> float:
    """Records per second for a bare aiokafka consumer reading ``topic`` from the beginning to its end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = time.perf_counter()
        seen = 0
        async for fetched in fetch_to_end(consumer, partitions, idle_ms=50):
            seen += sum(len(r) for r in fetched.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def publish_dataset(bootstrap: str, scale_name: str) -> tuple[str, int, float]:
    """The generated dataset (bench/national.py) published as the referrals service answers a store replay
    (every event, then an end marker per partition): the topic, how many events, and the seconds generating
    and publishing took."""
    from national import SCALES, directory, referral_events

    scale = SCALES[scale_name]
    topic = f"bench.national.{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, {topic: 4})
    producer = new_producer(bootstrap, client_id="bench")
    await producer.start()
    per_partition: Counter[int] = Counter()
    started = time.perf_counter()
    try:
        chunk: list[OutgoingRecord] = []
        for event in itertools.chain(directory(scale), referral_events(scale)):
            chunk.append(OutgoingRecord(topic, (event.subject or "").encode(), *reversed(encode_kafka(event))))
            if len(chunk) == 5000:
                per_partition.update(ack.partition for ack in await publish_all(producer, chunk))
                chunk = []
        per_partition.update(ack.partition for ack in await publish_all(producer, chunk))
        await send_markers(producer, topic, uuid.uuid4().hex, "referrals.events.v1", 4, per_partition, source="/bench")
    finally:
        await producer.stop()
    return topic, sum(per_partition.values()), time.perf_counter() - started


async def replay_figure(database_url: str, bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    """Events/s for a waitlists rebuild from the dataset's topic (replay and every fact) in one process and in one
    process per core, against a bare consumer reading the same topic; leaves the rebuilt projection in
    ``database_url`` for figure 5."""
    from waitlists.adapters.orm import metadata as waitlists_metadata
    from waitlists.adapters.projection_store import SqlProjectionStore
    from waitlists.service_layer.rebuild import rebuild

    cores = os.cpu_count() or 1
    bare = await bare_read(bootstrap, topic)
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(waitlists_metadata.create_all)
    found: dict[str, Any] = {"events": events, "bare_consumer_events_per_s": round(bare), "processes": cores}
    for processes in (1, cores):
        gc.collect()  # what the generator and earlier figures left is not the rebuild's
        reset_peak_rss()
        cpu, machine = _own_and_children_cpu(), _machine_busy_cpu()
        report = await rebuild(SqlProjectionStore(engine), bootstrap_servers=bootstrap, reply_topic=topic,
                               processes=processes)  # fmt: skip
        cpu_s, machine_s = _own_and_children_cpu() - cpu, _machine_busy_cpu() - machine
        assert report.events == events, report
        assert report.skipped == 0, report
        ours = report.events / report.seconds
        label = "1_process" if processes == 1 else "parts"
        found[f"rebuild_{label}_s"] = round(report.seconds, 2)
        found[f"rebuild_{label}_events_per_s"] = round(ours)
        found[f"ratio_{label}_to_bare"] = round(ours / bare, 3)
        found[f"rebuild_{label}_events_per_cpu_s"] = round(report.events / cpu_s)  # the rebuild's processes only
        # All in: the machine's busy CPU over the rebuild (PostgreSQL and the broker too; nothing else runs here).
        found[f"rebuild_{label}_machine_cpu_s"] = round(machine_s, 2)
        found[f"rebuild_{label}_events_per_machine_cpu_s"] = round(report.events / machine_s)
        if processes == 1:
            found["rebuild_process_peak_rss_mb"] = peak_rss_mb(os.getpid())
    await engine.dispose()
    # The headline: one process per core, as `python -m waitlists rebuild` runs by default.
    found["rebuild_events_per_s"] = found["rebuild_parts_events_per_s"]
    found["ratio_rebuild_to_bare"] = found["ratio_parts_to_bare"]
    found["target"] = ">= 0.5 of bare and >= 50000 events/s"
    return found


def _machine_busy_cpu() -> float:
    """CPU seconds the whole machine has been busy (every core; /proc/stat's user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_and_children_cpu() -> float:
    """User and system CPU seconds of this process and of its children that have ended (a rebuild's parts)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def queries_figure(database_url: str, bootstrap: str, scale_name: str, calls: int) -> dict[str, Any]:
    """p99 of the metrics and dashboard calls over the generated dataset at ``scale_name``, rebuilt into
    ``database_url`` by figure 4, for random areas, organisations, services and ``as_of`` dates in the past year."""
    from national import SCALES, area_id, provider_id, service_id

    from waitlists.bootstrap import build_app
    from waitlists.settings import WaitlistsSettings

    scale = SCALES[scale_name]
    # This process generated millions of events before serving: collect once and freeze what is left,
    # so the timings are the service's and not this process's garbage collector.
    gc.collect()
    gc.freeze()
    app = build_app(WaitlistsSettings(database_url=database_url, kafka_bootstrap_servers=bootstrap, run_workers=False,
                                      log_level="WARNING"))  # fmt: skip
    token = {"authorization": f"Bearer {mint_token('org-la-001', 'ops')}"}
    rng = random.Random(9)
    areas = range(1, scale.areas + 1)
    templates = ["svc-camhs-core", "svc-ehc-assessment", "svc-trust-slt", "svc-family-support"]
    paths: dict[str, Callable[[], str]] = {
        "metrics_area": lambda: f"/v1/metrics/area/{area_id(rng.choice(areas))}",
        "metrics_organisation": lambda: f"/v1/metrics/organisation/{provider_id(rng.choice(areas), 'camhs')}",
        "metrics_service": lambda: f"/v1/metrics/service/{service_id(rng.choice(areas), rng.choice(templates))}",
        "dashboard_services": lambda: f"/v1/dashboard/services?scope=area&scope_id={area_id(rng.choice(areas))}",
        "dashboard_trend": lambda: f"/v1/dashboard/trend?scope=area&scope_id={area_id(rng.choice(areas))}",
        "dashboard_scopes": lambda: "/v1/dashboard/scopes",
    }
    found: dict[str, Any] = {"scale": scale_name, "areas": scale.areas, "referrals": scale.referrals,
                             "calls_per_endpoint": calls}  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
        for name, path in paths.items():
            for _ in range(3):  # warm-up: the first calls compile and cache the statements
                assert (await http.get(path(), headers=token)).status_code == 200
            timings = []
            for _ in range(calls):
                as_of = (datetime.now(UTC).date() - timedelta(days=rng.randint(1, 360))).isoformat()
                url = path()
                started = time.perf_counter()
                response = await http.get(f"{url}{'&' if '?' in url else '?'}as_of={as_of}", headers=token)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
            found[f"{name}_p99_ms"] = round(pct(timings, 0.99) * 1000, 1)
    await app.state.runtime.engine.dispose()
    found["target"] = "p99 < 50 ms for any as_of, with the national dataset"
    return found


async def backtest_figure(database_url: str, scale_name: str, every_weeks: int) -> dict[str, Any]:
    """Issue 18: calibration of the predicted waits over the generated dataset rebuilt by figure 4: for as_of dates
    from 26 weeks after the data begin to 16 weeks before today, each service's predicted p90 to support against
    the children referred in the 4 weeks after (target: about 90% start within it). Also written on its own to
    bench/results/backtest-*.json."""
    from national import SCALES

    from send_shared.db import session_factory
    from waitlists.adapters.unit_of_work import SqlUnitOfWork
    from waitlists.domain.waits import WaitPolicy
    from waitlists.service_layer.backtest import backtest

    scale = SCALES[scale_name]
    today = datetime.now(UTC).date()
    first = today - timedelta(days=365 * scale.years) + timedelta(weeks=26)
    last = today - timedelta(weeks=16)
    engine = create_engine(database_url)
    started = time.perf_counter()
    try:
        result = await backtest(SqlUnitOfWork(session_factory(engine)), first=first, last=max(first, last),
                                every_weeks=every_weeks, cohort_weeks=4, observed_on=today, policy=WaitPolicy())  # fmt: skip
    finally:
        await engine.dispose()
    found = {"scale": scale_name, **result.report(), "seconds": round(time.perf_counter() - started, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"backtest-{scale_name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps(found, indent=2)
    )
    return found


# One organisation offers the whole load here, far past its production limit: the figures measure the
# pipeline, so the per-organisation limits are off.
NO_RATE_LIMITS = {"RATE_LIMIT_WRITES_PER_SECOND": "0", "RATE_LIMIT_READS_PER_SECOND": "0"}


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def referral_body(rng: random.Random) -> dict[str, Any]:
    return {
        "service_id": "svc-camhs-core",
        "child": {"given_name": "Sam", "family_name": "Taylor", "date_of_birth": "2015-04-12", "nhs_number": nhs_number(rng)},
        "primary_need": "SEMH", "reason": "Benchmark referral.", "urgency": "routine",
        "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "Referral"},
    }  # fmt: skip


async def load(
    url: str, headers: dict[str, str], seconds: float, concurrency: int, seed: int
) -> tuple[int, list[float]]:
    rng = random.Random(seed)
    done, latencies = 0, []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as http:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await http.post(
                    url, json=referral_body(rng), headers={**headers, "idempotency-key": uuid.uuid4().hex}
                )
                if response.status_code == 201:
                    done += 1
                    latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, latencies


def ingest_figure(pg: PostgresServer, bootstrap: str, seconds: float, work: Path) -> dict[str, Any]:
    """Referrals created per second through the full API (validation, auth, outbox, relay to Kafka),
    against a bare FastAPI endpoint inserting the same row into PostgreSQL."""
    ours_port, bare_port = free_port(), free_port()
    ours_db, bare_db = pg.new_database("bench_ingest"), pg.new_database("bench_bare")
    env = {
        "DATABASE_URL": ours_db,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "HTTP_PORT": str(ours_port),
        "LOG_LEVEL": "WARNING",
        **NO_RATE_LIMITS,
    }
    subprocess.run(
        [sys.executable, "-m", "referrals", "migrate"], env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL
    )
    ours = start_process([sys.executable, "-m", "referrals", "serve"], env, work / "referrals.log")
    bare = start_process([sys.executable, str(ROOT / "bench" / "bare_app.py")],
                         {"DATABASE_URL": bare_db, "HTTP_PORT": str(bare_port)}, work / "bare.log")  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{ours_port}/readyz")
        wait_http(f"http://127.0.0.1:{bare_port}/docs")
        token = {"authorization": f"Bearer {mint_token('org-riverside-primary', 'referrer')}"}
        bare_done, bare_lat = asyncio.run(load(f"http://127.0.0.1:{bare_port}/v1/referrals", {}, seconds, 16, 1))
        ours_done, ours_lat = asyncio.run(load(f"http://127.0.0.1:{ours_port}/v1/referrals", token, seconds, 16, 2))
        rss = peak_rss_mb(ours.pid)
        commit_to_topic = asyncio.run(commit_to_topic_ms(ours_db))
    finally:
        for process in (ours, bare):
            process.terminate()
            process.wait(timeout=20)
    ours_rate, bare_rate = ours_done / seconds, bare_done / seconds
    return {"seconds": seconds, "concurrency": 16, "ours_per_s": round(ours_rate, 1), "bare_per_s": round(bare_rate, 1),
            "cost_ratio_bare_over_ours": round(bare_rate / ours_rate, 2) if ours_rate else None,
            "ours_p99_ms": round(pct(ours_lat, 0.99) * 1000, 1) if ours_lat else None,
            "bare_p99_ms": round(pct(bare_lat, 0.99) * 1000, 1) if bare_lat else None,
            "referrals_peak_rss_mb": rss, "commit_to_topic_ms": commit_to_topic,
            "target": "cost ratio <= 2; commit-to-topic p99 < 1000 ms"}  # fmt: skip


async def commit_to_topic_ms(database_url: str) -> dict[str, float]:
    """From each outbox row's insert (in the transaction that committed it) to the broker's acknowledgement
    (``sent_at``, set as the relay marks the batch), over every event of the load: figure 2's latency."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            for _ in range(100):  # the relay drains what the load left
                if not (await conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))).scalar_one():
                    break
                await asyncio.sleep(0.1)
            row = (
                await conn.execute(
                    text(
                        "SELECT count(*), percentile_disc(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY d), max(d) "
                        "FROM (SELECT extract(epoch FROM sent_at - created_at) * 1000 AS d FROM outbox "
                        "WHERE sent_at IS NOT NULL) AS lags"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    if not row[0]:
        return {"events": 0}
    return {"events": row[0], "p50": round(float(row[1][0]), 1), "p99": round(float(row[1][1]), 1),
            "max": round(float(row[2]), 1)}  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss() -> None:
    """Starts this process's ``VmHWM`` again from its current size (Linux: ``clear_refs`` 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


BENCH_CLIENT = "send-bench"  # the application_name of the bench's own connections, not counted as the stack's


def _child_pids(comm: str) -> list[int]:
    """This process's direct children running the executable ``comm`` (the broker a DevStack started)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            head, tail = stat.read_text().rsplit(")", 1)
            if head.split("(", 1)[1] == comm and int(tail.split()[1]) == os.getpid():
                found.append(int(stat.parent.name))
    return found


async def _postgres_pids(admin_url: str, databases: list[str]) -> dict[str, list[int]]:
    """PostgreSQL's processes: the backends connected to ``databases`` for any client but this bench, and
    the server's own (checkpointer, WAL writer, background writer, autovacuum), which serve every
    database on the server."""
    import asyncpg
    from sqlalchemy.engine import make_url

    conn = await asyncpg.connect(make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        rows = await conn.fetch("SELECT pid, datname, backend_type, application_name FROM pg_stat_activity")
    finally:
        await conn.close()
    backends = [r["pid"] for r in rows if r["datname"] in databases and r["application_name"] != BENCH_CLIENT]
    shared = [r["pid"] for r in rows if r["backend_type"] != "client backend" and r["datname"] is None]
    return {"postgres_backends": backends, "postgres_server": shared}


class CpuMeter:
    """CPU time of everything a referral costs: each service process, the broker, PostgreSQL's backends serving
    the stack's databases and the server's shared processes (an upper bound of our share: they serve every
    database on the server). Used as a context manager, it samples every ``every`` seconds meanwhile and keeps each
    process's last reading, so a backend that ends (a pool closing a connection) keeps what it spent but for its last
    moments; without that, a run whose pools open and close connections would seem cheaper on PostgreSQL."""

    def __init__(self, stack: DevStack, admin_url: str, database_urls: dict[str, str], every: float = 0.25) -> None:
        from sqlalchemy.engine import make_url

        self.stack = stack
        self.admin_url = admin_url
        self.databases = [str(make_url(url).database) for url in database_urls.values()]
        self.every = every
        self._seen: dict[str, dict[int, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="cpu-meter", daemon=True)

    def __enter__(self) -> CpuMeter:
        self._watcher.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._watcher.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def _groups(self) -> dict[str, list[int]]:
        groups = {name: [p.pid] for name, p in self.stack.processes.items()}
        groups["broker"] = _child_pids("tansu")
        groups.update(asyncio.run(_postgres_pids(self.admin_url, self.databases)))
        with contextlib.suppress(OSError, IndexError):  # and the shared processes' parent, the postmaster
            stat = Path(f"/proc/{groups['postgres_server'][0]}/stat").read_text()
            groups["postgres_server"].append(int(stat.rsplit(")", 1)[1].split()[1]))
        return groups

    def sample(self) -> dict[str, dict[int, float]]:
        """Each group's processes' CPU seconds now, and the last reading of those that have ended since watching."""
        found: dict[str, dict[int, float]] = {}
        for group, pids in self._groups().items():
            found[group] = {}
            for pid in pids:
                with contextlib.suppress(OSError):
                    found[group][pid] = cpu_seconds(pid)
        with self._lock:
            for group, pids in found.items():
                self._seen.setdefault(group, {}).update(pids)
            return {group: dict(pids) for group, pids in self._seen.items()}

    @staticmethod
    def spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
        """CPU seconds per group between two samples, and ``all_in``, their sum."""
        spent = {
            group: sum(seconds - before.get(group, {}).get(pid, 0.0) for pid, seconds in pids.items())
            for group, pids in after.items()
        }
        return {**spent, "all_in": sum(spent.values())}


@contextlib.contextmanager
def running_stack(pg: PostgresServer, work: Path, tree: Path | None,
                  env: dict[str, str] | None = None) -> Iterator[tuple[DevStack, dict[str, str], Any]]:  # fmt: skip
    """The three services on PostgreSQL (from ``tree``'s sources when given, with ``env`` added to their
    environment) with a webhook endpoint at a local receiver, warmed up: one referral has gone all the way (until
    then consumers may still be joining)."""
    from send_devkit.webhook_receiver import Receiver

    urls = {name: pg.new_database(f"bench_{name}") for name in ("referrals", "waitlists", "notifications")}
    ports = {name: free_port() for name in urls}
    extra = {"LOG_LEVEL": "WARNING", "EMAIL_ENABLED": "false", **NO_RATE_LIMITS, **(env or {})}
    if tree is not None:
        sources = [tree / "shared" / "src", *(tree / "services" / name / "src" for name in urls)]
        extra["PYTHONPATH"] = os.pathsep.join(str(path) for path in sources)
    stack = DevStack(var_dir=work / f"stack-{uuid.uuid4().hex[:6]}", broker_port=free_port(), ports=ports,
                     database_urls=urls, smtp_port=free_port(), extra_env=extra)  # fmt: skip
    receiver = Receiver().start()
    try:
        stack.start()
        camhs = {"authorization": f"Bearer {mint_token('org-northshire-camhs', 'receiver')}"}
        created = httpx.post(f"{stack.url('notifications')}/v1/endpoints", headers=camhs,
                             json={"url": f"{receiver.base}/bench", "event_types": ["uk.send.referral.submitted.v1"]})  # fmt: skip
        receiver.secrets["/bench"] = created.json()["secret"]
        asyncio.run(_offered_load(stack.url("referrals"), urls["waitlists"], 1, 1, {}, {}))
        deadline = time.monotonic() + 60
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        yield stack, urls, receiver
    finally:
        receiver.stop()
        stack.stop()


def latency_figure(pg: PostgresServer, rates: list[float], seconds: float, work: Path, tree: Path | None = None,
                   env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """From the API's response to (a) the waitlists projection holding the referral and (b) the webhook
    arriving at a local receiver, at each offered rate of new referrals per second (one system, warmed up).
    ``cpu_ms_per_referral``: CPU ms per answered referral of each service, the broker (``broker``), PostgreSQL's
    backends serving the stack's databases (``postgres_backends``), the server's shared processes
    (``postgres_server``: checkpointer, WAL writer, ...; every database's) and ``all_in``, their sum: from the
    load's start until every webhook arrived."""
    found: dict[str, Any] = {"seconds_per_rate": seconds}
    with running_stack(pg, work, tree, env) as (stack, urls, receiver), CpuMeter(stack, pg.admin_url, urls) as meter:
        for rate in rates:
            start = len(receiver.received)
            answered: dict[str, float] = {}
            projected: dict[str, float] = {}
            cpu_before = meter.sample()
            batches_before = transactions(stack)
            sessions_before = asyncio.run(postgres_sessions(pg.admin_url, urls))
            asyncio.run(_offered_load(stack.url("referrals"), urls["waitlists"], rate, seconds, answered, projected))
            deadline = time.monotonic() + 30
            while len(receiver.received) < start + len(answered) and time.monotonic() < deadline:
                time.sleep(0.1)
            spent = CpuMeter.spent(cpu_before, meter.sample())
            batches = transactions(stack, since=batches_before)
            sessions = asyncio.run(postgres_sessions(pg.admin_url, urls))
            batches["postgresql"] = {"sessions": sessions - sessions_before}
            cpu_ms = {name: round(s * 1000 / max(1, len(answered)), 2) for name, s in spent.items()}
            arrived = {r.body["data"]["referral_id"]: r.at for r in receiver.received[start:] if r.body}
            a = [projected[r] - answered[r] for r in answered if r in projected]
            b = [arrived[r] - answered[r] for r in answered if r in arrived]
            found[f"offered_{rate:g}_per_s"] = {
                "sent": len(answered), "projected": len(a), "webhooks": len(b),
                "projection_p50_ms": round(statistics.median(a) * 1000, 1) if a else None,
                "projection_p99_ms": round(pct(a, 0.99) * 1000, 1) if a else None,
                "webhook_p50_ms": round(statistics.median(b) * 1000, 1) if b else None,
                "webhook_p99_ms": round(pct(b, 0.99) * 1000, 1) if b else None,
                "cpu_ms_per_referral": cpu_ms,
                "per_referral": {name: {what: round(count / max(1, len(answered)), 2) for what, count in counts.items()}
                                 for name, counts in batches.items()},
            }  # fmt: skip
        found["peak_rss_mb"] = {name: peak_rss_mb(p.pid) for name, p in stack.processes.items()}
    found["target"] = (
        "at 200/s: projection p50 < 20 ms, p99 < 100 ms; webhook p99 < 250 ms; all-in CPU <= 10 ms a referral at 100/s"
    )
    return found


# From each service's /metrics: consumer transactions (one observation of the handler-time histogram each), the
# messages they finished with, and the relay's cycles and the events they published. Fixed costs come with every
# transaction and cycle (BEGIN, the inbox claim, positions, COMMIT; the relay's shard locks, claim and marking), so
# how many messages a transaction carries decides much of the CPU per referral. Code from before the relay counted
# its cycles has no ``relay_cycles``.
_COUNTED = {"consumer_transactions": "consumer_handle_seconds_count", "consumer_messages": "consumer_messages_total",
            "relay_cycles": "outbox_relay_cycles_total", "relay_events": "outbox_published_events_total"}  # fmt: skip


def transactions(stack: DevStack, since: dict[str, dict[str, float]] | None = None) -> dict[str, dict[str, float]]:
    """Each service's counts of ``_COUNTED`` (its series summed), less ``since``'s."""
    found: dict[str, dict[str, float]] = {}
    for name in stack.ports:
        text = httpx.get(f"{stack.url(name)}/metrics", timeout=10).text
        found[name] = {}
        for what, metric in _COUNTED.items():
            values = re.findall(rf"^{metric}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
            if values:
                found[name][what] = sum(float(v) for v in values) - (since or {}).get(name, {}).get(what, 0.0)
    return found


async def postgres_sessions(admin_url: str, database_urls: dict[str, str]) -> float:
    """Sessions PostgreSQL has begun on the stack's databases since their creation (``pg_stat_database``): each one
    a forked backend whose caches start cold, and a driver that prepares its statements again."""
    import asyncpg
    from sqlalchemy.engine import make_url

    names = [str(make_url(url).database) for url in database_urls.values()]
    conn = await asyncpg.connect(make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        return float(await conn.fetchval("SELECT sum(sessions) FROM pg_stat_database WHERE datname = any($1)", names))
    finally:
        await conn.close()


def idle_figure(pg: PostgresServer, seconds: float, work: Path, tree: Path | None = None) -> dict[str, Any]:
    """What the warmed-up stack costs doing nothing: CPU ms per second of wall time over ``seconds`` of idleness
    (after ``settle`` seconds for the warm-up's tail), for the same groups as figure 3's ``cpu_ms_per_referral``."""
    settle = 5.0
    with running_stack(pg, work, tree) as (stack, urls, _receiver):
        meter = CpuMeter(stack, pg.admin_url, urls)
        time.sleep(settle)
        before, started = meter.sample(), time.monotonic()
        time.sleep(seconds)
        spent, wall = CpuMeter.spent(before, meter.sample()), time.monotonic() - started
    return {"idle_s": seconds, "settle_s": settle,
            "cpu_ms_per_s": {name: round(s * 1000 / wall, 2) for name, s in spent.items()},
            "target": "near zero: no busy polling"}  # fmt: skip


async def _offered_load(base: str, waitlists_db: str, rate: float, seconds: float, answered: dict[str, float],
                        projected: dict[str, float]) -> None:  # fmt: skip
    from waitlists.adapters.orm import referrals as projection

    rng = random.Random(f"{rate}-{seconds}-{time.time_ns()}")  # fresh children each run: no duplicate referrals
    token = {"authorization": f"Bearer {mint_token('org-riverside-primary', 'referrer')}"}
    engine = create_async_engine(waitlists_db, connect_args={"server_settings": {"application_name": BENCH_CLIENT}})
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set() or len(projected) < len(answered):
            pending = [r for r in answered if r not in projected]
            if pending:
                async with engine.connect() as conn:
                    found = (
                        await conn.execute(
                            select(projection.c.referral_id).where(projection.c.referral_id.in_(pending))
                        )
                    ).scalars()
                    now = time.monotonic()
                    for referral_id in found:
                        projected[referral_id] = now
            if stop.is_set() and time.monotonic() > stop_at + 10:
                return
            await asyncio.sleep(0.002)

    async with httpx.AsyncClient(timeout=30) as http:

        async def one() -> None:
            response = await http.post(f"{base}/v1/referrals", json=referral_body(rng),
                                       headers={**token, "idempotency-key": uuid.uuid4().hex})  # fmt: skip
            if response.status_code == 201:
                answered[response.json()["id"]] = time.monotonic()

        watcher = asyncio.create_task(watch())
        tasks = []
        started = time.monotonic()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        stop_at = time.monotonic()
        stop.set()
        await watcher
    await engine.dispose()


FIGURES = ("relay", "ingest", "replay", "queries", "backtest", "latency", "idle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"comma-separated figures to run, of {', '.join(FIGURES)} (default: all)")  # fmt: skip
    parser.add_argument("--baseline-tree", type=Path, default=None,
                        help="another checkout (e.g. a git worktree of an earlier commit): figures 3 and 7 run its "
                             "services too, in this run, as *_baseline")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--baseline-out", type=Path, default=None,
                        help="write the baseline tree's figures to this file, with the names --out uses")  # fmt: skip
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - set(FIGURES):
        parser.error(f"unknown figures: {', '.join(sorted(only - set(FIGURES)))}")
    quick = args.quick or os.environ.get("QUICK") == "1"
    quick_sizes: dict[str, Any] = {
        "relay": 20_000,
        "ingest_s": 8.0,
        "rates": [20.0, 100.0],
        "latency_s": 10.0,
        "idle_s": 30.0,
        "scale": "small",
        "calls": 50,
        "backtest_every_weeks": 4,
    }
    full_sizes: dict[str, Any] = {
        "relay": 200_000,
        "ingest_s": 30.0,
        "rates": [20.0, 100.0, 200.0],
        "latency_s": 60.0,
        "idle_s": 60.0,
        "scale": "national",
        "calls": 100,
        "backtest_every_weeks": 4,
    }
    sizes = quick_sizes if quick else full_sizes
    work = ROOT / "var" / "bench" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES))
    figures: dict[str, Any] = {"mode": "quick" if quick else "full", "started": datetime.now(UTC).isoformat()}
    trees: list[tuple[str, Path | None]] = [("", None)]
    if args.baseline_tree is not None:
        trees.insert(0, ("_baseline", args.baseline_tree.resolve()))
        figures["baseline_tree"] = str(args.baseline_tree.resolve())
    try:
        with EmbeddedBroker(log_path=work / "broker.log") as broker:
            if "relay" in only:
                figures["2_outbox_relay"] = asyncio.run(
                    relay_figure(pg.new_database("bench_relay"), broker.bootstrap_servers, sizes["relay"])
                )
                print("relay", figures["2_outbox_relay"], flush=True)
            if "ingest" in only:
                figures["1_ingest"] = ingest_figure(pg, broker.bootstrap_servers, sizes["ingest_s"], work)
                print("ingest", figures["1_ingest"], flush=True)
            if only & {"replay", "queries", "backtest"}:  # the last two read what the replay rebuilt
                topic, events, generated_s = asyncio.run(publish_dataset(broker.bootstrap_servers, sizes["scale"]))
                print(f"dataset: {sizes['scale']}, {events} events generated and published in {generated_s:.0f} s")
                dataset_db = pg.new_database("bench_dataset")
                figures["4_replay"] = asyncio.run(replay_figure(dataset_db, broker.bootstrap_servers, topic, events))
                figures["4_replay"]["dataset"] = sizes["scale"]
                print("replay", figures["4_replay"], flush=True)
            if "queries" in only:
                figures["5_queries"] = asyncio.run(
                    queries_figure(dataset_db, broker.bootstrap_servers, sizes["scale"], sizes["calls"])
                )
                print("queries", figures["5_queries"], flush=True)
            if "backtest" in only:
                figures["6_wait_backtest"] = asyncio.run(
                    backtest_figure(dataset_db, sizes["scale"], sizes["backtest_every_weeks"])
                )
                print("wait backtest", figures["6_wait_backtest"], flush=True)
        for suffix, tree in trees:
            if "idle" in only:
                figures[f"7_idle{suffix}"] = idle_figure(pg, sizes["idle_s"], work, tree)
                print(f"idle{suffix}", figures[f"7_idle{suffix}"], flush=True)
        for suffix, tree in trees:
            if "latency" in only:
                figures[f"3_end_to_end_latency{suffix}"] = latency_figure(
                    pg, sizes["rates"], sizes["latency_s"], work, tree
                )
                print(f"latency{suffix}", figures[f"3_end_to_end_latency{suffix}"], flush=True)
    finally:
        pg.drop_all()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{figures['mode']}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(figures, indent=2))
    mine = {k: v for k, v in figures.items() if not k.endswith("_baseline")}
    baseline = {"mode": figures["mode"], "started": figures["started"], "tree": figures.get("baseline_tree"),
                **{k.removesuffix("_baseline"): v for k, v in figures.items() if k.endswith("_baseline")}}  # fmt: skip
    for path, found in ((args.out, mine), (args.baseline_out, baseline)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(found, indent=2))
    print()
    print(f"{'figure':<24} {'measured':<70}")
    for key, value in figures.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items() if k != "target")
            print(f"{key:<24} {shown}")
            if "target" in value:
                print(f"{'':<24} target: {value['target']}")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
