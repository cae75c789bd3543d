"""When the broker loses what the relay published: the relay notices at its next publish, the healer
notices by asking, and what is queued again starts at the first lost record, not at the beginning.

A partition that kept a prefix of its records is made by deleting the topic and writing the first few
records back exactly as they were (same offsets, same events): what a truncated log looks like."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from shared_testkit import create_topics, make_event, outbox, read_topic
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.kafka import OutgoingRecord, TopicSpec, new_producer, publish_all, recreate_topics
from send_shared.log_probe import LogProbe
from send_shared.outbox import OutboxRelay, OutboxWriter
from send_shared.outbox.healer import OutboxHealer
from send_shared.outbox.relay import LostRecords

KEY = "ref-heal"


async def _delete(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    await asyncio.sleep(0.2)


async def _recreate(bootstrap: str, topic: str) -> None:
    await _delete(bootstrap, topic)
    await create_topics(bootstrap, topic, partitions=1)


async def _published(engine: AsyncEngine, bootstrap: str, count: int) -> tuple[str, list[str]]:
    """``count`` events of one key, written and relayed to a new one-partition topic."""
    topic = f"heal-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, topic, partitions=1)
    events = [make_event(KEY, version) for version in range(1, count + 1)]
    async with engine.begin() as conn:
        await OutboxWriter(outbox).add_many(conn, [(e, topic, KEY) for e in events])
    producer = new_producer(bootstrap, client_id="heal-test")
    await producer.start()
    try:
        assert await OutboxRelay(engine, outbox, producer).relay_once() == count
    finally:
        await producer.stop()
    return topic, [e.id for e in events]


async def _unsent(engine: AsyncEngine) -> list[str]:
    q, s = outbox.queue, outbox.store
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(s.c.event_id)
            .join(q, q.c.position == s.c.position)
            .where(q.c.sent_at.is_(None))
            .order_by(q.c.position)
        )
        return list(rows.scalars())


@pytest.fixture
async def probe(kafka_bootstrap: str) -> LogProbe:
    probe = LogProbe(kafka_bootstrap)
    yield probe  # type: ignore[misc]
    await probe.stop()


async def test_a_truncated_partition_is_republished_from_its_first_lost_record(
    any_engine: AsyncEngine, kafka_bootstrap: str, probe: LogProbe
) -> None:
    topic, ids = await _published(any_engine, kafka_bootstrap, 10)
    kept = await read_topic(kafka_bootstrap, topic, at_least=10)
    await _recreate(kafka_bootstrap, topic)
    producer = new_producer(kafka_bootstrap, client_id="heal-test")
    await producer.start()
    try:  # the first six records survive, one batch each, at their old offsets
        for record in kept[:6]:
            await publish_all(
                producer, [OutgoingRecord(topic, record.key or b"", record.value or b"", list(record.headers))]
            )
    finally:
        await producer.stop()
    healer = OutboxHealer(any_engine, outbox, probe, lock=asyncio.Lock())
    assert await healer.check() == 4
    assert await _unsent(any_engine) == ids[6:]
    assert healer.status() is not None and healer.status().startswith("healing")  # type: ignore[union-attr]
    assert await healer.check() == 0, "a partition already healed is left alone"


async def test_a_lost_topic_is_republished_whole_even_past_the_queue_retention(
    any_engine: AsyncEngine, kafka_bootstrap: str, probe: LogProbe
) -> None:
    topic, ids = await _published(any_engine, kafka_bootstrap, 8)
    q, s = outbox.queue, outbox.store
    async with any_engine.begin() as conn:  # the oldest three sent rows were pruned from the queue
        oldest = select(s.c.position).where(s.c.event_id.in_(ids[:3])).scalar_subquery()
        await conn.execute(delete(q).where(q.c.position.in_(oldest)))
    await _recreate(kafka_bootstrap, topic)
    assert await OutboxHealer(any_engine, outbox, probe, lock=asyncio.Lock()).check() == 8
    assert await _unsent(any_engine) == ids


async def test_the_relay_notices_offsets_going_back_and_heals_before_marking_anything_sent(
    any_engine: AsyncEngine, kafka_bootstrap: str, probe: LogProbe
) -> None:
    topic, ids = await _published(any_engine, kafka_bootstrap, 5)
    await _recreate(kafka_bootstrap, topic)
    late = make_event(KEY, 6)
    async with any_engine.begin() as conn:
        await OutboxWriter(outbox).add(conn, late, topic=topic, key=KEY)
    producer = new_producer(kafka_bootstrap, client_id="heal-test")
    await producer.start()
    try:
        relay = OutboxRelay(any_engine, outbox, producer)
        with pytest.raises(LostRecords) as lost:
            await relay.relay_once()
        assert lost.value.lost == {topic: {0}}
        assert await _unsent(any_engine) == [late.id], "the batch that met the loss is not marked sent"
        lock = asyncio.Lock()
        healer = OutboxHealer(any_engine, outbox, probe, lock=lock)
        assert await healer.heal(lost.value.lost, "test") == 5
        relay = OutboxRelay(any_engine, outbox, producer, lock=lock)
        assert await relay.relay_once() == 6
    finally:
        await producer.stop()
    on_topic = await read_topic(kafka_bootstrap, topic, at_least=7)
    first_seen: list[str] = []
    for record in on_topic:
        event_id = dict(record.headers)["ce_id"].decode()
        if event_id not in first_seen:
            first_seen.append(event_id)
    assert sorted(first_seen) == sorted([*ids, late.id])
    republished = [dict(r.headers)["ce_id"].decode() for r in on_topic][1:]
    assert republished == [*ids, late.id], "republished in position order after the record that met the loss"


async def test_a_log_that_keeps_its_newest_record_but_hides_others_is_found_by_reading_back(
    any_engine: AsyncEngine, kafka_bootstrap: str, probe: LogProbe
) -> None:
    """What the embedded broker does when a topic is deleted and created again while producers write:
    batches of the earlier topic are served at the new topic's offsets. Only reading back finds it."""
    healer = OutboxHealer(any_engine, outbox, probe, lock=asyncio.Lock())
    assert await healer.check() == 0  # the process starts: nothing acknowledged yet
    topic, ids = await _published(any_engine, kafka_bootstrap, 5)
    kept = await read_topic(kafka_bootstrap, topic, at_least=5)
    await _recreate(kafka_bootstrap, topic)
    producer = new_producer(kafka_bootstrap, client_id="heal-test")
    await producer.start()
    try:  # offsets 1 to 3 serve other records; the newest (offset 4) is the one acknowledged
        for n, record in enumerate(kept):
            value = record.value if n in (0, 4) else b'{"other": true}'
            headers = list(record.headers) if n in (0, 4) else [("ce_id", f"other-{n}".encode())]
            await publish_all(producer, [OutgoingRecord(topic, record.key or b"", value or b"", headers)])
    finally:
        await producer.stop()
    assert await healer.check() == 4
    assert await _unsent(any_engine) == ids[1:]
    assert healer.status() is not None and healer.status().startswith("healing")  # type: ignore[union-attr]


async def test_reading_back_an_intact_log_queues_nothing_and_reads_each_record_once(
    any_engine: AsyncEngine, kafka_bootstrap: str, probe: LogProbe
) -> None:
    healer = OutboxHealer(any_engine, outbox, probe, lock=asyncio.Lock())
    assert await healer.check() == 0
    await _published(any_engine, kafka_bootstrap, 6)
    reads: list[tuple[int, int]] = []
    original = probe.read_range

    async def counted(tp: Any, first: int, last: int) -> dict[int, str] | None:
        reads.append((first, last))
        return await original(tp, first, last)

    probe.read_range = counted  # type: ignore[method-assign]
    assert await healer.check() == 0
    assert await healer.check() == 0
    assert reads == [(0, 5)], "each acknowledged record is read back once"
    assert await _unsent(any_engine) == []


async def test_a_topic_that_kept_nothing_is_made_afresh_so_writes_taken_while_it_was_gone_are_not_served(
    any_engine: AsyncEngine, kafka_bootstrap: str, probe: LogProbe
) -> None:
    """The embedded broker takes writes for a deleted topic and, once the topic is created again, serves
    them at its offsets. The owner makes such a topic afresh (create, delete, create) and then heals it."""
    topic, ids = await _published(any_engine, kafka_bootstrap, 3)
    await _delete(kafka_bootstrap, topic)
    producer = new_producer(kafka_bootstrap, client_id="heal-test")
    await producer.start()
    try:  # the relay wrote to the deleted topic before the watch saw it gone
        await publish_all(producer, [OutgoingRecord(topic, KEY.encode(), b"{}", [("ce_id", b"stray")])])
    finally:
        await producer.stop()
    lock = asyncio.Lock()

    async def recreate(name: str) -> None:
        await recreate_topics(kafka_bootstrap, [TopicSpec(name, 1)])

    healer = OutboxHealer(any_engine, outbox, probe, lock=lock, recreate_topic=recreate)
    await healer.remake(topic)
    assert await healer.check() == 3
    producer = new_producer(kafka_bootstrap, client_id="heal-test")
    await producer.start()
    try:
        assert await OutboxRelay(any_engine, outbox, producer, lock=lock).relay_once() == 3
    finally:
        await producer.stop()
    served = [dict(r.headers)["ce_id"].decode() for r in await read_topic(kafka_bootstrap, topic, at_least=3)]
    assert served == ids


async def test_readiness_is_red_from_the_moment_a_loss_is_suspected_while_it_is_measured(
    any_engine: AsyncEngine, kafka_bootstrap: str, probe: LogProbe
) -> None:
    """Measuring a loss asks the broker partition by partition and can take seconds: the service is not ready
    during that time either (a probe every second would otherwise miss a short heal entirely)."""
    topic, _ = await _published(any_engine, kafka_bootstrap, 4)
    lock = asyncio.Lock()
    healer = OutboxHealer(any_engine, outbox, probe, lock=lock)
    assert healer.status() is None
    await lock.acquire()  # a relay holds the lock: the heal waits inside its measuring step
    heal = asyncio.create_task(healer.heal({topic: {0}}, "a test's suspicion"))
    await asyncio.sleep(0.2)
    assert healer.status() == "healing: measuring what the broker lost"
    lock.release()
    await heal
    assert healer.status() is None or healer.status().startswith("healing: republishing")  # type: ignore[union-attr]
