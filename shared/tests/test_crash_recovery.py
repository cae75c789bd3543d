"""SIGKILL the relay and the consumer at random moments while events flow; every effect still happens once.

Real processes (shared/tests/procs/): an outbox relay and a ConsumerRuntime whose handler
writes one ``effects`` row per event. The test writes events into the PostgreSQL outbox
the whole time (row-locked per referral, some transactions rolled back), kills each process
with SIGKILL at least ten times, each time shortly after it was seen making progress,
restarts it, then lets everything drain. The relay's broker acknowledgements are held back 50 ms
(a slow broker) so that kills also land between publishing a batch and marking it sent.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from shared_testkit import (
    count,
    create_topics,
    effects,
    header,
    inbox,
    make_event,
    outbox,
    read_topic,
    referrals,
    unique,
)
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.events.topics import Topics
from send_shared.outbox import OutboxWriter

PROCS = Path(__file__).parent / "procs"
KILLS = 10
KEYS = 40


class Supervised:
    """One helper process, restarted after each SIGKILL; always killed at the end."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        stderr = open(self.log_dir / f"{self.name}-{self.starts}.stderr", "wb")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [sys.executable, *self.argv],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            stderr.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.kills += 1

    def assert_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.log_dir / f"{self.name}-{self.starts}.stderr").read_text()
            raise AssertionError(f"{self.name} exited by itself with {self.process.returncode}:\n{log[-3000:]}")

    def terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _writer(engine: AsyncEngine, topic: str, stop: asyncio.Event, seed: int, stats: Counter[str]) -> None:
    """Keeps committing state changes with their events; one in six is rolled back."""
    rng = random.Random(seed)
    writer = OutboxWriter(outbox)
    keys = [f"ref-{i:03d}" for i in range(KEYS)]
    while not stop.is_set():
        key = rng.choice(keys)
        rollback = rng.random() < 1 / 6
        try:
            async with engine.begin() as conn:
                current = (
                    await conn.execute(
                        select(referrals.c.version).where(referrals.c.referral_id == key).with_for_update()
                    )
                ).scalar_one()
                events = [make_event(key, current + i + 1) for i in range(rng.randint(1, 3))]
                await writer.add_many(conn, [(event, topic, key) for event in events])
                await conn.execute(
                    update(referrals).where(referrals.c.referral_id == key).values(version=current + len(events))
                )
                if rollback:
                    raise LookupError("rolled back on purpose")
        except LookupError:
            stats["rolled_back_events"] += len(events)
        else:
            stats["committed_events"] += len(events)
        await asyncio.sleep(rng.uniform(0.005, 0.03))


async def _progress_then_kill(
    proc: Supervised, progress: Callable[[], Awaitable[int]], rng: random.Random, stats: Counter[str]
) -> None:
    """KILLS times: wait until the process visibly makes progress, let it run a random moment more, SIGKILL it."""
    for _ in range(KILLS):
        before = await progress()
        deadline = time.monotonic() + 15
        while await progress() == before:
            proc.assert_alive()
            assert time.monotonic() < deadline, f"{proc.name} made no progress for 15 s"
            await asyncio.sleep(0.05)
        await asyncio.sleep(rng.uniform(0.0, 0.6))
        proc.assert_alive()
        proc.kill()
        stats[f"{proc.name}_killed_after_progress"] += 1
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        proc.start()


async def test_sigkill_relay_and_consumer_every_effect_applied_once(
    pg_engine: AsyncEngine, pg_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic, group = unique("crash-events"), unique("crash-group")
    await create_topics(kafka_bootstrap, topic, Topics.dead_letter(group), Topics.replay(group))
    async with pg_engine.begin() as conn:
        await conn.execute(insert(referrals), [{"referral_id": f"ref-{i:03d}", "version": 0} for i in range(KEYS)])

    rng = random.Random(os.environ.get("CRASH_SEED", "20260301"))
    relay_log, consumer_log = tmp_path / "relay.log", tmp_path / "consumer.log"
    relay = Supervised(
        "relay", [str(PROCS / "relay_proc.py"), pg_url, kafka_bootstrap, str(relay_log), "0.05"], tmp_path
    )
    consumer = Supervised(
        "consumer",
        [str(PROCS / "consumer_proc.py"), pg_url, kafka_bootstrap, topic, group, str(consumer_log)],
        tmp_path,
    )
    stats: Counter[str] = Counter()
    stop_writing = asyncio.Event()
    started = time.monotonic()
    relay.start()
    consumer.start()
    writer = asyncio.create_task(_writer(pg_engine, topic, stop_writing, rng.randrange(1 << 30), stats))
    try:

        async def sent() -> int:
            return await count(pg_engine, outbox.queue, outbox.queue.c.sent_at.is_not(None))

        async def applied() -> int:
            return await count(pg_engine, effects)

        await asyncio.gather(
            _progress_then_kill(relay, sent, random.Random(rng.random()), stats),
            _progress_then_kill(consumer, applied, random.Random(rng.random()), stats),
        )
        chaos_seconds = time.monotonic() - started
        stop_writing.set()
        await writer

        # Drain: the last incarnations publish and apply everything committed.
        committed = await count(pg_engine, outbox.queue)
        deadline = time.monotonic() + 40
        while await count(pg_engine, effects) < committed or await count(
            pg_engine, outbox.queue, outbox.queue.c.sent_at.is_(None)
        ):
            relay.assert_alive()
            consumer.assert_alive()
            assert time.monotonic() < deadline, "did not drain within 40 s"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # any late duplicate would show up now
    finally:
        stop_writing.set()
        if not writer.done():
            writer.cancel()
        relay.terminate()
        consumer.terminate()

    assert relay.kills >= KILLS and consumer.kills >= KILLS
    async with pg_engine.connect() as conn:
        outbox_ids = set((await conn.execute(select(outbox.store.c.event_id))).scalars())
        effect_rows = (
            await conn.execute(
                select(effects.c.event_id, effects.c.message_key, effects.c.version).order_by(effects.c.applied_ns)
            )
        ).all()
        inbox_ids = set((await conn.execute(select(inbox.c.event_id).where(inbox.c.consumer_group == group))).scalars())
    committed = len(outbox_ids)
    assert committed == stats["committed_events"] > 0
    assert await count(pg_engine, outbox.queue, outbox.queue.c.sent_at.is_(None)) == 0
    # Exactly once: the effects' primary key forbids doubles; nothing is missing, nothing extra.
    assert len(effect_rows) == committed
    assert {row.event_id for row in effect_rows} == outbox_ids
    assert inbox_ids == outbox_ids
    # Applied in each referral's version order, with no gap.
    by_key: dict[str, list[int]] = {}
    for row in effect_rows:
        by_key.setdefault(row.message_key, []).append(row.version)
    for key, versions in by_key.items():
        assert versions == list(range(1, len(versions) + 1)), f"{key}: applied out of order or with a gap"
    # Nothing was parked: crashes are not handler failures.
    assert not await read_topic(kafka_bootstrap, Topics.dead_letter(group), timeout=2)

    records = await read_topic(kafka_bootstrap, topic, at_least=committed)
    on_topic = Counter(header(r, "ce_id") for r in records)
    assert set(on_topic) == outbox_ids
    consumer_lines = consumer_log.read_text().splitlines() if consumer_log.exists() else []
    print(
        f"\ncrash test: {committed} events committed ({stats['rolled_back_events']} rolled back), "
        f"relay killed {relay.kills}x, consumer killed {consumer.kills}x in {chaos_seconds:.1f}s of chaos; "
        f"{len(records)} records on the topic ({len(records) - len(on_topic)} re-sent by restarted relays); "
        f"consumers skipped {sum('duplicate' in line for line in consumer_lines)} duplicate deliveries; "
        f"total {time.monotonic() - started:.1f}s"
    )
