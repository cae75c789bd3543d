"""Store replay: a consumer asks a producer for every event it ever published, from its event store.

A topic is transport and can forget; a producer's event store cannot. So whatever rebuilds a
projection asks the producer rather than trusting a topic:

1. the requester creates a private reply topic and publishes ``uk.send.store.replay_requested.v1``
   on the producer's request topic (``<producer>.store-replay.requests.v1``);
2. the producer records the request (its consumer, with inbox) and a worker streams every stored
   event of the asked topic, in position order, to the reply topic (same key, headers and body),
   then one ``uk.send.store.replay_completed.v1`` marker on every partition saying how many events
   it put on that partition;
3. the requester reads the reply topic until it has a marker from every partition and checks it read
   exactly that many events on each: a replay with a record missing is refused, never half used.

A producer that restarts in the middle serves the request again from the start, into the reply
topic emptied (deleted and created again); a reader that saw part of the first attempt then finds
the counts wrong and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from send_shared.db import upsert_insert
from send_shared.events.envelope import CloudEvent, encode_kafka
from send_shared.kafka import OutgoingRecord, TopicSpec, ensure_topics, new_producer, publish_all
from send_shared.kafka_connection import client_options
from send_shared.kafka_link import ProducerSource
from send_shared.outbox.table import OutboxTables
from send_shared.waiting import woken_or_stopped

log = logging.getLogger(__name__)

REPLAY_REQUESTED = "uk.send.store.replay_requested.v1"
REPLAY_COMPLETED = "uk.send.store.replay_completed.v1"
_MARKER_TYPE = REPLAY_COMPLETED.encode()  # compared with every record's type header
_CHUNK = 5_000
REPLY_RETENTION = timedelta(days=2)


def request_topic(producer: str) -> str:
    return f"{producer}.store-replay.requests.v1"


def reply_topic(producer: str, request_id: str) -> str:
    return f"{producer}.store-replay.{request_id}.v1"


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReplayRequestedV1(_Contract):
    request_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    topic: str = Field(description="The producer's topic whose every event is wanted.")
    reply_topic: str = Field(description="Where to put them; created by the requester.")
    requested_by: str


class ReplayCompletedV1(_Contract):
    request_id: str
    topic: str
    partition: int = Field(ge=0)
    events_in_partition: int = Field(ge=0, description="Events put on this partition before this marker.")
    events: int = Field(ge=0, description="Events in the whole replay.")


def define_replay_requests_table(metadata: MetaData) -> Table:
    return Table(
        "store_replay_requests",
        metadata,
        Column("request_id", String(32), primary_key=True),
        Column("topic", String(249), nullable=False),
        Column("reply_topic", String(249), nullable=False),
        Column("requested_by", String(100), nullable=False),
        Column("requested_at", DateTime(timezone=True), nullable=False),
        Column("served_at", DateTime(timezone=True), nullable=True),
        Column("events", Integer, nullable=True),
        Column("attempts", Integer, nullable=False),
    )


class IncompleteReplay(Exception):
    """The reply did not hold every event the producer sent: nothing may be built from it."""


# --- the producer's side ----------------------------------------------------------------------------


class StoreReplayServer:
    """Records requests (as a consumer handler) and serves them (as a worker), woken by ``wake`` once the
    consumer's transaction holding a request has committed (its ``after_commit``); ``poll_interval``: how long
    it waits for that before looking anyway (requests recorded by another process's consumer)."""

    def __init__(
        self,
        engine: AsyncEngine,
        tables: OutboxTables,
        requests: Table,
        producer: ProducerSource,
        *,
        bootstrap_servers: str,
        topics: Sequence[str],
        source: str,
        poll_interval: float = 30.0,
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.requests = requests
        self.producer = producer
        self.bootstrap_servers = bootstrap_servers
        self.topics = set(topics)
        self.source = source
        self.poll_interval = poll_interval
        self.wake = asyncio.Event()

    async def record(self, event: CloudEvent, session: AsyncSession) -> None:
        if event.type != REPLAY_REQUESTED:
            return
        request = ReplayRequestedV1.model_validate(event.data)
        if request.topic not in self.topics:
            log.warning("store replay asked for a topic this service does not publish", extra={"topic": request.topic})
            return
        await session.execute(
            upsert_insert(session)(self.requests)
            .values(
                request_id=request.request_id,
                topic=request.topic,
                reply_topic=request.reply_topic,
                requested_by=request.requested_by,
                requested_at=datetime.now(UTC),
                attempts=0,
            )
            .on_conflict_do_nothing()
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            async with self.engine.connect() as conn:
                pending = (
                    await conn.execute(
                        select(self.requests).where(self.requests.c.served_at.is_(None)).order_by("requested_at")
                    )
                ).mappings().all()  # fmt: skip
            for request in pending:
                await self.serve(dict(request))
            await woken_or_stopped(self.wake, stop, self.poll_interval)

    async def serve(self, request: dict[str, object]) -> int:
        request_id, topic, reply = str(request["request_id"]), str(request["topic"]), str(request["reply_topic"])
        attempts = int(str(request["attempts"]))
        async with self.engine.begin() as conn:
            await conn.execute(
                update(self.requests).where(self.requests.c.request_id == request_id).values(attempts=attempts + 1)
            )
        partitions = await _partitions(self.bootstrap_servers, reply)
        if partitions is None:
            log.warning("store replay reply topic missing; request dropped", extra={"request_id": request_id})
            await self._served(request_id, 0)
            return 0
        if attempts:  # a first attempt was cut short: start the reply over from nothing
            await _recreate(self.bootstrap_servers, reply, partitions)
        started = time.monotonic()
        producer = await self.producer.get()
        per_partition: Counter[int] = Counter()
        s = self.tables.store
        after = 0
        while True:
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(s.c.position, s.c.message_key, s.c.headers, s.c.payload)
                        .where(s.c.topic == topic, s.c.position > after)
                        .order_by(s.c.position)
                        .limit(_CHUNK)
                    )
                ).all()
            if not rows:
                break
            records = [
                OutgoingRecord(reply, key.encode(), bytes(payload), [(k, str(v).encode()) for k, v in headers.items()])
                for _, key, headers, payload in rows
            ]
            for ack in await publish_all(producer, records):
                per_partition[ack.partition] += 1
            after = rows[-1].position
        total = sum(per_partition.values())
        await send_markers(producer, reply, request_id, topic, partitions, per_partition, source=self.source)
        await self._served(request_id, total)
        log.info(
            "store replay served",
            extra={"request_id": request_id, "topic": topic, "events": total,
                   "seconds": round(time.monotonic() - started, 2)},
        )  # fmt: skip
        return total

    async def _served(self, request_id: str, events: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(self.requests)
                .where(self.requests.c.request_id == request_id)
                .values(served_at=datetime.now(UTC), events=events)
            )


async def send_markers(
    producer: object,
    reply: str,
    request_id: str,
    topic: str,
    partitions: int,
    per_partition: Counter[int],
    *,
    source: str,
) -> None:
    """One completion marker on every partition of the reply topic, after every event of the replay."""
    total = sum(per_partition.values())
    for partition in range(partitions):
        marker = CloudEvent(
            type=REPLAY_COMPLETED,
            source=source,
            subject=request_id,
            data=ReplayCompletedV1(
                request_id=request_id,
                topic=topic,
                partition=partition,
                events_in_partition=per_partition[partition],
                events=total,
            ).model_dump(),
        )
        headers, value = encode_kafka(marker)
        await producer.send_and_wait(reply, value=value, key=b"", headers=headers, partition=partition)  # type: ignore[attr-defined]


# --- the requester's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayRequest:
    request_id: str
    reply_topic: str


async def request_replay(
    bootstrap_servers: str, *, producer: str, topic: str, requested_by: str, partitions: int = 4
) -> ReplayRequest:
    request_id = uuid.uuid4().hex
    reply = reply_topic(producer, request_id)
    retention = {"retention.ms": str(int(REPLY_RETENTION.total_seconds() * 1000))}
    await ensure_topics(bootstrap_servers, [TopicSpec(reply, partitions, retention)])
    event = CloudEvent(
        type=REPLAY_REQUESTED,
        source=f"/send/{requested_by}",
        subject=request_id,
        data=ReplayRequestedV1(
            request_id=request_id, topic=topic, reply_topic=reply, requested_by=requested_by
        ).model_dump(),
    )
    kafka = new_producer(bootstrap_servers, client_id=f"{requested_by}-store-replay")
    await kafka.start()
    try:
        await publish_all(kafka, [OutgoingRecord(request_topic(producer), request_id.encode(), *_encoded(event))])
    finally:
        await kafka.stop()
    return ReplayRequest(request_id, reply)


def _encoded(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    headers, value = encode_kafka(event)
    return value, headers


@dataclass(frozen=True)
class ReplayRead:
    events: int
    seconds: float


async def read_replay(
    bootstrap_servers: str,
    reply: str,
    add: Callable[[Sequence[tuple[str, bytes | None]], bytes | None], None],
    *,
    request_id: str | None = None,
    idle_timeout: float = 60.0,
    batch: int = 5_000,
    share: tuple[int, int] = (0, 1),
) -> ReplayRead:
    """Reads the reply until every partition's marker, handing each event to ``add``; raises
    ``IncompleteReplay`` if a partition holds fewer or more events than its marker says, and
    ``TimeoutError`` if nothing arrives for ``idle_timeout`` seconds (the producer is not running).
    ``share`` (index, of how many readers): read only the partitions whose number leaves ``index`` when divided
    by the readers' count, for a reader that is one of several."""
    index, readers = share
    if not 0 <= index < readers:
        raise ValueError(f"share {share}: the index must be at least 0 and below the number of readers")
    started = time.monotonic()
    consumer = AIOKafkaConsumer(**client_options(bootstrap_servers), group_id=None, enable_auto_commit=False,
                                max_poll_records=batch, fetch_max_bytes=64 * 1024 * 1024, fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        every = sorted(consumer.partitions_for_topic(reply) or ())
        if not every:
            raise IncompleteReplay(f"reply topic {reply} does not exist")
        partitions = [TopicPartition(reply, p) for p in every if p % readers == index]
        if not partitions:
            return ReplayRead(0, time.monotonic() - started)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen: Counter[int] = Counter()
        markers: dict[int, ReplayCompletedV1] = {}
        last_record = time.monotonic()
        while len(markers) < len(partitions):
            fetched = await consumer.getmany(timeout_ms=200, max_records=batch)
            if not fetched:
                if time.monotonic() - last_record > idle_timeout:
                    raise TimeoutError(f"nothing arrived on {reply} for {idle_timeout:g} s: is the producer running?")
                continue
            last_record = time.monotonic()
            for tp, records in fetched.items():
                for record in records:
                    headers = record.headers or ()
                    if _is_marker(headers):
                        marker = ReplayCompletedV1.model_validate_json(record.value or b"")
                        if request_id is None or marker.request_id == request_id:
                            markers[tp.partition] = marker
                        continue
                    if tp.partition in markers:
                        raise IncompleteReplay(f"an event followed the end marker on {reply}[{tp.partition}]")
                    seen[tp.partition] += 1
                    add(headers, record.value)
    finally:
        await consumer.stop()
    for partition, marker in sorted(markers.items()):
        if seen[partition] != marker.events_in_partition:
            raise IncompleteReplay(
                f"{reply}[{partition}] held {seen[partition]} events; the producer sent {marker.events_in_partition}"
            )
    return ReplayRead(sum(seen.values()), time.monotonic() - started)


def _is_marker(headers: Sequence[tuple[str, bytes | None]]) -> bool:
    for key, value in headers:
        if key == "ce_type":
            return value == _MARKER_TYPE
    return False


async def delete_topic(bootstrap_servers: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers), client_id="store-replay")
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
    finally:
        await admin.close()


async def _partitions(bootstrap_servers: str, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers), client_id="store-replay")
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry["topic"] == topic and not entry["error_code"]:
            return len(entry["partitions"]) or None
    return None


async def _recreate(bootstrap_servers: str, topic: str, partitions: int) -> None:
    await delete_topic(bootstrap_servers, topic)
    retention = {"retention.ms": str(int(REPLY_RETENTION.total_seconds() * 1000))}
    await ensure_topics(bootstrap_servers, [TopicSpec(topic, partitions, retention)])
