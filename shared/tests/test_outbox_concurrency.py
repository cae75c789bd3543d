"""The transactional outbox under concurrent writers and relays, against the real broker and databases.

Writers lock a referral row, add events carrying the next versions, sleep, then commit or roll
back; relays publish concurrently. The topic must end up holding every committed event, no
rolled-back one, each key on one partition in strictly increasing version order (re-sends of
the same record are allowed: the relay is at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from shared_testkit import (
    count,
    create_schema,
    create_topics,
    header,
    make_event,
    outbox,
    read_topic,
    referrals,
    unique,
    versions_by_key,
)
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import create_engine
from send_shared.kafka import new_producer
from send_shared.outbox import OutboxRelay, OutboxWriter

WRITERS = 16
KEYS = 40


class _Rollback(Exception):
    pass


@dataclass
class Ledger:
    committed: dict[str, tuple[str, int]] = field(default_factory=dict)  # event id -> (key, version)
    rolled_back: set[str] = field(default_factory=set)


async def _seed(engine: AsyncEngine, keys: list[str]) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(referrals), [{"referral_id": k, "version": 0} for k in keys])


async def _write_one(
    engine: AsyncEngine, writer: OutboxWriter, topic: str, key: str, ledger: Ledger, rng: random.Random, pause: float
) -> None:
    """One state change: lock the referral, add 1-3 events with its next versions, maybe roll back."""
    events = []
    rollback = rng.random() < 0.2
    try:
        async with engine.begin() as conn:
            current = (
                await conn.execute(select(referrals.c.version).where(referrals.c.referral_id == key).with_for_update())
            ).scalar_one()
            events = [make_event(key, current + i + 1) for i in range(rng.randint(1, 3))]
            await writer.add_many(conn, [(event, topic, key) for event in events])
            await conn.execute(
                update(referrals).where(referrals.c.referral_id == key).values(version=current + len(events))
            )
            await asyncio.sleep(rng.uniform(0, pause))
            if rollback:
                raise _Rollback
    except _Rollback:
        ledger.rolled_back.update(e.id for e in events)
        return
    for event in events:
        ledger.committed[event.id] = (key, int(event.data["version"]))


async def _writers(
    engine: AsyncEngine, topic: str, keys: list[str], ledger: Ledger, *, transactions: int, pause: float, seed: int
) -> None:
    writer = OutboxWriter(outbox)

    async def one_writer(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        for _ in range(transactions):
            await _write_one(engine, writer, topic, rng.choice(keys), ledger, rng, pause)
            await asyncio.sleep(rng.uniform(0, pause))

    await asyncio.gather(*(one_writer(n) for n in range(WRITERS)))


class CountingRelay(OutboxRelay):
    """The real relay, counting how many rows it published (to show both relays took part)."""

    published = 0

    async def relay_once(self) -> int:
        n = await super().relay_once()
        self.published += n
        return n


async def _wait_all_sent(engine: AsyncEngine, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while await count(engine, outbox.queue, outbox.queue.c.sent_at.is_(None)):
        assert time.monotonic() < deadline, "outbox rows left unsent"
        await asyncio.sleep(0.1)


def _check_topic(records: list[ConsumerRecord[bytes, bytes]], ledger: Ledger) -> dict[str, Any]:
    ids = Counter(header(r, "ce_id") for r in records)
    on_topic = set(ids)
    assert not on_topic & ledger.rolled_back, "a rolled-back event was published"
    assert on_topic == set(ledger.committed), "topic and committed events differ"

    # Duplicates are allowed only as exact re-sends of the same record.
    first: dict[str, ConsumerRecord[bytes, bytes]] = {}
    for record in records:
        event_id = header(record, "ce_id") or ""
        ce_headers = sorted((k, bytes(v)) for k, v in record.headers if k.startswith("ce_") or k == "content-type")
        seen = first.setdefault(event_id, record)
        seen_headers = sorted((k, bytes(v)) for k, v in seen.headers if k.startswith("ce_") or k == "content-type")
        assert (record.key, record.value, ce_headers) == (seen.key, seen.value, seen_headers)

    # One key, one partition; versions strictly increasing once later re-sends are dropped.
    partitions: dict[bytes | None, set[int]] = {}
    for record in records:
        partitions.setdefault(record.key, set()).add(record.partition)
    assert all(len(p) == 1 for p in partitions.values()), "a key's events were spread over partitions"
    expected: dict[str, list[int]] = {}
    for key, version in ledger.committed.values():
        expected.setdefault(key, []).append(version)
    for key, sequence in versions_by_key(records).items():
        deduplicated, seen_ids = [], set()
        for event_id, version in sequence:
            if event_id not in seen_ids:
                seen_ids.add(event_id)
                deduplicated.append(version)
        assert deduplicated == sorted(expected[key]), f"key {key}: versions out of order: {deduplicated}"
        assert all(a < b for a, b in itertools.pairwise(deduplicated))
    return {"records": len(records), "events": len(on_topic), "resent": len(records) - len(on_topic)}


async def _run_scenario(
    engine: AsyncEngine,
    bootstrap: str,
    *,
    relay_engines: list[AsyncEngine],
    transactions: int,
    pause: float,
    batch_size: int,
) -> dict[str, Any]:
    topic = unique("outbox-conc")
    await create_topics(bootstrap, topic)
    keys = [f"ref-{i:03d}" for i in range(KEYS)]
    await _seed(engine, keys)
    ledger = Ledger()
    stop = asyncio.Event()
    producers = [new_producer(bootstrap, client_id=f"relay-{n}") for n in range(len(relay_engines))]
    for producer in producers:
        await producer.start()
    relays = [
        CountingRelay(relay_engine, outbox, producer, batch_size=batch_size, poll_interval=0.05)
        for relay_engine, producer in zip(relay_engines, producers, strict=True)
    ]
    tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
    try:
        await _writers(engine, topic, keys, ledger, transactions=transactions, pause=pause, seed=len(relays))
        await _wait_all_sent(engine)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for producer in producers:
            await producer.stop()
    assert ledger.rolled_back, "the scenario should roll some transactions back"
    assert await count(engine, outbox.queue) == len(ledger.committed)  # rolled-back rows never reached the table
    assert await count(engine, outbox.queue, outbox.queue.c.sent_at.is_(None)) == 0
    records = await read_topic(bootstrap, topic, at_least=len(ledger.committed), settle=0.5)
    stats = _check_topic(records, ledger)
    stats["per_relay"] = [relay.published for relay in relays]
    stats["rolled_back"] = len(ledger.rolled_back)
    assert sum(stats["per_relay"]) >= len(ledger.committed)
    return stats


async def test_concurrent_writers_one_relay_postgres(pg_engine: AsyncEngine, kafka_bootstrap: str) -> None:
    stats = await _run_scenario(
        pg_engine, kafka_bootstrap, relay_engines=[pg_engine], transactions=40, pause=0.01, batch_size=50
    )
    print("one relay, postgresql:", stats)


async def test_concurrent_writers_two_relays_postgres(pg_engine: AsyncEngine, kafka_bootstrap: str) -> None:
    # Two relays, each with its own engine and producer (as two processes would have), on the same table;
    # small batches so that they interleave shard by shard.
    second = create_engine(pg_engine.url.render_as_string(hide_password=False))
    try:
        stats = await _run_scenario(
            pg_engine, kafka_bootstrap, relay_engines=[pg_engine, second], transactions=40, pause=0.01, batch_size=10
        )
    finally:
        await second.dispose()
    print("two relays, postgresql:", stats)
    assert all(stats["per_relay"]), f"one relay published nothing, so nothing was shared: {stats['per_relay']}"


async def test_concurrent_writers_one_relay_sqlite(tmp_path: Path, kafka_bootstrap: str) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    try:
        await create_schema(engine)
        stats = await _run_scenario(
            engine, kafka_bootstrap, relay_engines=[engine], transactions=15, pause=0.003, batch_size=50
        )
    finally:
        await engine.dispose()
    print("one relay, sqlite:", stats)


class _TopicWatcher:
    """A plain consumer positioned at the end of a topic, waiting for given event ids."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
        )

    async def __aenter__(self) -> _TopicWatcher:
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(4)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:
            await self.consumer.position(tp)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def seconds_until(self, event_id: str, since: float, within: float) -> float | None:
        while time.monotonic() - since < within:
            batch = await self.consumer.getmany(timeout_ms=50)
            if any(header(m, "ce_id") == event_id for ms in batch.values() for m in ms):
                return time.monotonic() - since
        return None


async def _commit_event(
    engine: AsyncEngine, topic: str, key: str, version: int, channel: str | None = None
) -> tuple[str, float]:
    event = make_event(key, version)
    writer = OutboxWriter(outbox) if channel is None else OutboxWriter(outbox, notify_channel=channel)
    async with engine.begin() as conn:
        await writer.add(conn, event, topic=topic, key=key)
    return event.id, time.monotonic()


@contextlib.asynccontextmanager
async def _listening_relay(
    engine: AsyncEngine, bootstrap: str, name: str, safety_poll: float
) -> AsyncIterator[tuple[str, _TopicWatcher]]:
    """A relay publishing to a topic of its own, its polling effectively off (30 s) and its safety poll
    ``safety_poll``, and a watcher of that topic; yielded once the relay did its first (empty) cycle and listens."""
    topic = unique(f"outbox-{name}")
    await create_topics(bootstrap, topic)
    producer = new_producer(bootstrap, client_id=f"relay-{name}")
    await producer.start()
    stop = asyncio.Event()
    relay = OutboxRelay(engine, outbox, producer, poll_interval=30.0, safety_poll=safety_poll)
    task = asyncio.create_task(relay.run(stop))
    try:
        async with _TopicWatcher(bootstrap, topic) as watcher:
            await asyncio.sleep(1.0)
            yield topic, watcher
    finally:
        stop.set()
        await task
        await producer.stop()


async def test_a_commit_whose_notification_never_comes_is_published_by_the_safety_poll(
    pg_engine: AsyncEngine, kafka_bootstrap: str
) -> None:
    """The relay waits for notifications, but looks anyway every ``safety_poll``: an event is never left behind."""
    async with _listening_relay(pg_engine, kafka_bootstrap, "unheard", safety_poll=1.0) as (topic, watcher):
        event_id, committed = await _commit_event(pg_engine, topic, "ref-unheard", 1, channel="nobody_listens")
        latency = await watcher.seconds_until(event_id, committed, within=5.0)
    assert latency is not None, "an event whose notification was lost was never published"


async def test_the_relay_listens_again_when_its_connection_is_lost(
    pg_engine: AsyncEngine, kafka_bootstrap: str
) -> None:
    """Its listening connection killed (a PostgreSQL restart, a proxy's timeout), the relay makes another at once:
    a commit after that is published on its notification, not at the next safety poll."""
    async with _listening_relay(pg_engine, kafka_bootstrap, "relisten", safety_poll=30.0) as (topic, watcher):
        async with pg_engine.connect() as conn:
            killed = (
                await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
                    )
                )
            ).scalars().all()  # fmt: skip
        assert killed == [True]
        await asyncio.sleep(1.0)  # it notices the loss and listens again
        event_id, committed = await _commit_event(pg_engine, topic, "ref-relisten", 1)
        latency = await watcher.seconds_until(event_id, committed, within=3.0)
    assert latency is not None, "after losing its listening connection the relay waited for its safety poll"


async def test_relay_wakes_on_commit_notify(pg_engine: AsyncEngine, kafka_bootstrap: str) -> None:
    """With polling effectively off (30 s), only the NOTIFY sent at commit can make the relay publish quickly."""
    latencies = []
    async with _listening_relay(pg_engine, kafka_bootstrap, "notify", safety_poll=30.0) as (topic, watcher):
        for version in range(1, 6):
            event_id, committed = await _commit_event(pg_engine, topic, "ref-notify", version)
            latency = await watcher.seconds_until(event_id, committed, within=2.0)
            assert latency is not None, f"event {version} not published within 2 s of its commit"
            latencies.append(round(latency, 3))
            await asyncio.sleep(0.3)  # the relay finishes its cycle and waits again
    print("commit-to-topic latencies (s):", latencies)


async def test_commit_during_a_relay_cycle_is_not_left_for_the_next_poll(
    pg_engine: AsyncEngine, kafka_bootstrap: str
) -> None:
    topic = unique("outbox-race")
    await create_topics(kafka_bootstrap, topic)
    late: dict[str, Any] = {}

    class CommitDuringCycle(OutboxRelay):
        async def relay_once(self) -> int:
            published = await super().relay_once()
            if published and not late:
                # Another service instance commits an event just after this cycle's claim query.
                late["id"], late["at"] = await _commit_event(pg_engine, topic, "ref-race", 2)
                await asyncio.sleep(0.1)  # its NOTIFY reaches the relay's listener
            return published

    producer = new_producer(kafka_bootstrap, client_id="relay-race")
    await producer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(
        CommitDuringCycle(pg_engine, outbox, producer, poll_interval=30.0, safety_poll=30.0).run(stop)
    )
    try:
        async with _TopicWatcher(kafka_bootstrap, topic) as watcher:
            await asyncio.sleep(1.0)
            await _commit_event(pg_engine, topic, "ref-race", 1)
            while not late:
                await asyncio.sleep(0.01)
            latency = await watcher.seconds_until(late["id"], late["at"], within=3.0)
    finally:
        stop.set()
        await task
        await producer.stop()
    assert latency is not None, "an event committed during a relay cycle waited for the next poll"


async def test_commits_within_the_linger_go_out_in_one_cycle(pg_engine: AsyncEngine, kafka_bootstrap: str) -> None:
    """Woken by a commit, the relay waits ``linger`` before its cycle: the commits of that time are published with
    the first, in one cycle and one produce, and none waits for a later wake."""
    topic = unique("outbox-linger")
    await create_topics(kafka_bootstrap, topic)
    cycles: list[int] = []

    class RecordingRelay(OutboxRelay):
        async def relay_once(self) -> int:
            published = await super().relay_once()
            if published:
                cycles.append(published)
            return published

    producer = new_producer(kafka_bootstrap, client_id="relay-linger")
    await producer.start()
    stop = asyncio.Event()
    relay = RecordingRelay(pg_engine, outbox, producer, poll_interval=30.0, safety_poll=30.0, linger=0.5)
    task = asyncio.create_task(relay.run(stop))
    try:
        async with _TopicWatcher(kafka_bootstrap, topic) as watcher:
            await asyncio.sleep(1.0)  # its first (empty) cycle done, it listens
            _, since = await _commit_event(pg_engine, topic, "ref-linger", 1)
            for version in (2, 3):
                await asyncio.sleep(0.1)
                last, _ = await _commit_event(pg_engine, topic, "ref-linger", version)
            assert await watcher.seconds_until(last, since, within=3.0) is not None
    finally:
        stop.set()
        await task
        await producer.stop()
    assert cycles == [3], f"three commits within the linger took cycles of {cycles}"
