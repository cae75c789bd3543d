"""A referral event dated in year 1 or 9999 (refused at other services' edges now, but old events may
exist) is parked on the dead-letter topic at once, and the consumer goes on with the next events."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.consumer import ConsumerRuntime
from send_shared.consumer.positions import ConsumerPositions
from send_shared.events.envelope import CloudEvent, encode_kafka
from send_shared.events.topics import Topics
from send_shared.inbox import Inbox
from send_shared.kafka import ensure_topics, new_producer
from waitlists.adapters.orm import inbox, positions, referral_changes, waiting_spells
from waitlists.bootstrap import handle_referral_event, refresh_facts

from .conftest import directory_events, feed, referral_events

EXTREME_TIMES = ["0001-01-01T00:00:00Z", "0001-01-01T12:00:00+00:00", "9999-12-31T23:59:59Z",
                 "9999-12-31T23:30:00-01:00"]  # fmt: skip


def dated(event: CloudEvent, occurred_at: str) -> CloudEvent:
    """The event with its business time replaced as raw JSON (as an old producer might have written it)."""
    return CloudEvent(id=f"evt-{uuid.uuid4().hex}", type=event.type, source=event.source, subject=event.subject,
                      data={**event.data, "occurred_at": occurred_at})  # fmt: skip


async def dead_letters(bootstrap: str, topic: str, at_least: int, timeout: float = 20.0) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(found) < at_least and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=200)
            found += batch.get(tp, [])
        return found
    finally:
        await consumer.stop()


async def test_events_dated_outside_the_calendar_are_parked_and_the_next_are_applied(
    engine: AsyncEngine, kafka_bootstrap: str
) -> None:
    await feed(engine, *directory_events())
    group, topic = f"waitlists-{uuid.uuid4().hex[:8]}", f"referrals-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, {topic: 1, Topics.dead_letter(group): 1, Topics.replay(group): 1})
    (first,) = referral_events("r1", "c1", "svc-camhs", ("submitted", "2026-01-05"))
    poison = [
        dated(referral_events(f"bad{n}", "c2", "svc-camhs", ("submitted", "2026-01-05"))[0], moment)
        for n, moment in enumerate(EXTREME_TIMES)
    ]
    later = referral_events("r2", "c2", "svc-camhs", ("submitted", "2026-01-06"), ("accepted", "2026-01-07"))
    producer = new_producer(kafka_bootstrap, client_id=f"{group}-test")
    await producer.start()
    try:
        for event in [first, *poison, *later]:
            headers, value = encode_kafka(event)
            await producer.send_and_wait(topic, value=value, key=b"one-partition", headers=headers)
        runtime = ConsumerRuntime(
            bootstrap_servers=kafka_bootstrap, group_id=group, topics=[topic], handler=handle_referral_event,
            engine=engine, before_commit=refresh_facts, inbox=Inbox(inbox, group),
            positions=ConsumerPositions(positions, group), producer=producer, max_attempts=3,
            backoff_initial=0.05, backoff_max=0.2, session_timeout_ms=6000, heartbeat_interval_ms=1000,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        try:
            deadline = time.monotonic() + 60
            while True:
                async with engine.connect() as conn:
                    applied = set((await conn.execute(select(referral_changes.c.referral_id))).scalars())
                if {"r1", "r2"} <= applied or task.done() or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            if task.done():
                task.result()
            parked = await dead_letters(kafka_bootstrap, Topics.dead_letter(group), at_least=len(poison))
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    finally:
        await producer.stop()
    assert applied == {"r1", "r2"}, "the events after the poison ones were applied, the poison ones not"
    assert len(parked) == len(poison)
    for record in parked:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["dlq_attempts"] == "1", "refused by rule: never retried"
        assert headers["dlq_original_topic"] == topic
    async with engine.connect() as conn:  # facts were derived for what was applied, and only for that
        waiting = set((await conn.execute(select(waiting_spells.c.referral_id))).scalars())
    assert waiting == {"r1", "r2"}
