"""Test-only schema and helpers shared by the tests of ``send_shared`` and their helper processes.

The ``effects`` table stands for a consumer's state change: its primary key is the event
id, so an effect applied twice would fail loudly, and counting rows checks "exactly once".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from send_shared.consumer.positions import define_positions_table
from send_shared.events.envelope import CloudEvent
from send_shared.inbox import define_inbox_table
from send_shared.kafka import ensure_topics, new_consumer
from send_shared.outbox import define_outbox_tables

metadata = MetaData()
outbox = define_outbox_tables(metadata)
inbox = define_inbox_table(metadata)
positions = define_positions_table(metadata)
effects = Table(
    "effects",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("message_key", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The order effects were applied in: now() is the transaction's start, the same for every event of a
    # batch applied together, so it cannot order them.
    Column("applied_ns", BigInteger, nullable=False),
)

# A stand-in for the referral row: writers lock it (SELECT ... FOR UPDATE) and bump its version, so one
# referral's events are written by serialised transactions, as in the services.
referrals = Table(
    "referrals",
    metadata,
    Column("referral_id", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
)

EVENT_TYPE = "uk.send.test.happened.v1"
EVENT_SOURCE = "/send/tests"


# The embedded broker (Tansu) lets a group rebalance only once the session of a member that left or died
# has expired, so with the production session (10 s) every restart of a consumer costs 5-18 s. Tests run the
# real consumer with only its group session shortened, so restarts take about a second.
TEST_SESSION_TIMEOUT_MS = 1500
TEST_HEARTBEAT_INTERVAL_MS = 300


def quick_rejoin_consumer(*args: Any, **kwargs: Any) -> AIOKafkaConsumer:
    """``send_shared.kafka.new_consumer`` with every setting kept except a short group session."""
    consumer = new_consumer(*args, **kwargs)
    consumer._session_timeout_ms = TEST_SESSION_TIMEOUT_MS
    consumer._heartbeat_interval_ms = TEST_HEARTBEAT_INTERVAL_MS
    return consumer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


async def create_topics(bootstrap: str, *names: str, partitions: int = 4) -> None:
    await ensure_topics(bootstrap, dict.fromkeys(names, partitions))


def make_event(key: str, version: int, **data: Any) -> CloudEvent:
    return CloudEvent(
        type=EVENT_TYPE, source=EVENT_SOURCE, subject=key, data={"referral_id": key, "version": version, **data}
    )


async def apply_effect(event: CloudEvent, session: AsyncSession) -> None:
    """The handler used by consumer tests: one row per event, primary key = event id."""
    await session.execute(
        insert(effects).values(
            event_id=event.id,
            message_key=event.subject or "",
            version=int(event.data["version"]),
            applied_ns=time.time_ns(),
        )
    )


async def count(engine: AsyncEngine, table: Table, *where: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


async def read_topic(
    bootstrap: str, topic: str, *, at_least: int = 0, timeout: float = 20.0, settle: float = 0.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the beginning, with a plain (group-less) consumer.

    Reads until the partitions' end offsets are reached and at least ``at_least`` records
    were seen (or ``timeout`` passes), then keeps reading for ``settle`` seconds more.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] = set()
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                if time.monotonic() > deadline:
                    return []
                await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        settle_until: float | None = None
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=100)
            for messages in batch.values():
                records.extend(messages)
            now = time.monotonic()
            if now > deadline:
                break
            if len(records) >= at_least and not batch:
                ends = await consumer.end_offsets(tps)
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    if settle_until is None:
                        settle_until = now + settle
                    if now >= settle_until:
                        break
        return records
    finally:
        await consumer.stop()


def versions_by_key(records: Iterable[ConsumerRecord[bytes, bytes]]) -> dict[str, list[tuple[str, int]]]:
    """(event id, version) per message key, in partition order."""
    import orjson

    result: dict[str, list[tuple[str, int]]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        key = (record.key or b"").decode()
        result.setdefault(key, []).append((header(record, "ce_id") or "", int(orjson.loads(record.value)["version"])))
    return result
