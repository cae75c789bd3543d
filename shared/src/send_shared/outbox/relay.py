"""Outbox relay: publishes committed outbox rows to Kafka, then marks them sent.

Correctness notes
- No ``id > last_seen`` cursor: ids are taken at insert, not commit, so such a cursor
  skips rows whose transaction commits after a later id. The relay always claims
  *unsent* rows instead.
- At-least-once: rows are marked sent only after the broker acknowledged them, in the
  same transaction that claimed them; if the relay or broker dies mid-way the rows stay
  unsent and are published again (consumers de-duplicate by event id).
- Per-key order with several relays (PostgreSQL): ``FOR UPDATE SKIP LOCKED`` alone would
  let two relays take two events of one referral and publish them out of order. Every
  key hashes to one of 64 shards; a relay first locks every shard no other relay holds
  (transaction-scoped advisory locks), then claims unsent rows of those shards only, so
  one shard is published by one relay at a time, in id order. One referral's events are
  written by transactions serialised on the referral row, so their id order is their
  commit order. Relays take turns rather than share the work: more relays add
  availability, not throughput.
- SQLite runs a single relay; SQLite serialises writers, so the same reasoning holds.
- The broker forgetting: each acknowledgement says where the record landed; the relay keeps the
  newest acknowledged offset of each partition (``published_heads``, read at the start of its
  transaction). On an intact log every offset handed out later is higher than every offset handed
  out earlier, so an acknowledgement at or below the head means the partition lost records (a
  restarted broker, a topic deleted and created again, a truncated log). The batch is then not
  marked sent, and ``on_loss`` (the healer) puts what was lost back on the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.structs import RecordMetadata
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Integer, Select, String, TextClause, bindparam, cast, delete, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from send_shared import direct
from send_shared.db import InList, as_utc, upsert_insert
from send_shared.health import detected
from send_shared.kafka import OutgoingRecord, publish_all
from send_shared.kafka_link import as_source
from send_shared.metrics import (
    OUTBOX_COMMIT_TO_PUBLISH,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
    OUTBOX_RELAY_CYCLES,
)
from send_shared.outbox.table import SHARDS, OutboxTables
from send_shared.outbox.writer import DEFAULT_CHANNEL
from send_shared.telemetry import PROPAGATOR, TRACE_HEADERS, context_from_mapping
from send_shared.waiting import woken_or_stopped

log = logging.getLogger(__name__)
tracer = trace.get_tracer("send_shared.outbox")

ADVISORY_NAMESPACE = 0x5E0D  # first key of pg_try_advisory_xact_lock(int, int); the shard is the second
_PRUNE_EVERY = timedelta(minutes=10)
LostPartitions = dict[str, set[int]]  # topic -> partitions
OnLoss = Callable[[LostPartitions, str], Awaitable[object]]


class LostRecords(Exception):
    """The broker acknowledged records at offsets it had already handed out: it lost what was there."""

    def __init__(self, lost: LostPartitions) -> None:
        super().__init__(f"broker lost records of {sorted((t, sorted(p)) for t, p in lost.items())}")
        self.lost = lost


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        tables: OutboxTables,
        producer: Any,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        safety_poll: float = 10.0,
        linger: float = 0.0,
        retention: timedelta = timedelta(days=7),
        notify_channel: str = DEFAULT_CHANNEL,
        on_loss: OnLoss | None = None,
        lock: asyncio.Lock | None = None,
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.producer = as_source(producer)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.safety_poll = safety_poll
        self.linger = linger
        self.retention = retention
        self.notify_channel = notify_channel
        self.on_loss = on_loss
        # Held for a whole cycle; the healer takes it too, so the two never interleave in one process.
        self.lock = lock or asyncio.Lock()
        self._wake = asyncio.Event()
        self._postgres = engine.dialect.name == "postgresql"
        self._claim = _claim_statement(tables, sharded=self._postgres)
        self._last_prune = datetime.min.replace(tzinfo=UTC)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Cycles while there is work, then waits: for a commit's notification (PostgreSQL), looking anyway after
        ``safety_poll`` in case one was missed; without a listening connection (SQLite, or PostgreSQL's dropped
        it and it cannot be made again yet), every ``poll_interval``."""
        listener = None
        listen_again_at = -math.inf  # after a failed attempt, the next one waits a safety poll (no connection storm)
        failures = 0
        try:
            while not stop.is_set():
                if (
                    self._postgres
                    and (listener is None or listener.is_closed())
                    and time.monotonic() >= listen_again_at
                ):
                    listener = await self._listen()  # before the cycle: what was notified meanwhile is read now
                    if listener is None:
                        listen_again_at = time.monotonic() + self.safety_poll
                # Cleared before the cycle, so a commit notified while it runs wakes the next wait at once.
                self._wake.clear()
                try:
                    while await self.relay_once() == self.batch_size and not stop.is_set():
                        pass
                    await self._prune_if_due()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except LostRecords as lost:
                    detected("publish_regression", "broker acknowledged offsets it had handed out before",
                             lost={t: sorted(p) for t, p in lost.lost.items()})  # fmt: skip
                    if self.on_loss is None:
                        raise
                    try:
                        await self.on_loss(lost.lost, "acknowledged offsets went back")
                    except Exception:
                        # Not healed yet: the next cycle publishes again, finds the loss again, tries again.
                        log.exception("healing after a broker loss failed; trying again")
                        await _sleep_or_stop(stop, 1.0)
                    continue
                except Exception:
                    failures += 1
                    OUTBOX_PUBLISH_FAILURES.inc()
                    log.exception("outbox relay cycle failed", extra={"consecutive_failures": failures})
                    # Short: when the broker comes back, what waited must go out (and a loss be seen) soon.
                    await _sleep_or_stop(stop, min(0.2 * 2**failures, 2.0))
                    continue
                listening = listener is not None and not listener.is_closed()
                await woken_or_stopped(self._wake, stop, self.safety_poll if listening else self.poll_interval)
                if self._wake.is_set() and self.linger:
                    # A commit woke it: the commits of the next few ms go out in the same cycle. At a few hundred
                    # commits a second a cycle had published one or two events for five statements and a produce.
                    await _sleep_or_stop(stop, self.linger)
        finally:
            if listener is not None:
                await listener.close()

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were published."""
        async with self.lock, self.engine.begin() as conn:
            shards = await self._take_shards(conn) if self._postgres else None
            if shards == []:
                OUTBOX_RELAY_CYCLES.labels("empty").inc()
                return 0
            rows = (await direct.execute(conn, self._claim, {"shards": shards, "limit": self.batch_size})).mappings()
            if not rows:
                OUTBOX_RELAY_CYCLES.labels("empty").inc()
                return 0
            heads = _heads_of(rows[0]["heads"]) if self._postgres else await self._heads(conn)
            producer = await self.producer.get()
            acks = await publish_all(producer, self._traced_records(rows))
            lost: LostPartitions = defaultdict(set)
            for ack in acks:
                head = heads.get((ack.topic, ack.partition))
                if head is not None and ack.offset <= head:
                    lost[ack.topic].add(ack.partition)
            if lost:
                raise LostRecords(dict(lost))
            now = datetime.now(UTC)
            await self._mark_sent(conn, rows, acks, now)
        OUTBOX_RELAY_CYCLES.labels("published").inc()
        for row in rows:
            OUTBOX_PUBLISHED.labels(row["topic"]).inc()
            OUTBOX_COMMIT_TO_PUBLISH.observe(max(0.0, (now - as_utc(row["created_at"])).total_seconds()))
        return len(rows)

    async def _take_shards(self, conn: AsyncConnection) -> list[int]:
        """Every shard no other relay holds, locked until this transaction ends. Taken in a statement of
        its own, before the rows are read: a lock tried row by row inside the claiming query could fail
        on one row and succeed on a later row of the same shard, skipping the earlier event."""
        result = await direct.execute(conn, _TAKE_SHARDS, {"last": SHARDS - 1, "ns": ADVISORY_NAMESPACE})
        return result.scalars()

    async def _heads(self, conn: AsyncConnection) -> dict[tuple[str, int], int]:
        h = self.tables.heads
        rows = await conn.execute(select(h.c.topic, h.c.partition, h.c.offset))
        return {(topic, partition): offset for topic, partition, offset in rows}

    async def _mark_sent(
        self, conn: AsyncConnection, rows: Sequence[Any], acks: Sequence[RecordMetadata], now: datetime
    ) -> None:
        """The rows sent, with where the broker put them, and each partition's newest head moved up."""
        q, h = self.tables.queue, self.tables.heads
        if self._postgres:  # one statement, prepared once whatever the batch
            await direct.execute(
                conn,
                _mark_sent_statement(q.name, h.name),
                {
                    "now": now,
                    "positions": [row["position"] for row in rows],
                    "partitions": [ack.partition for ack in acks],
                    "offsets": [ack.offset for ack in acks],
                    "event_ids": [row["event_id"] for row in rows],
                    "topics": [ack.topic for ack in acks],
                },
            )
            return
        await conn.execute(
            update(q)
            .where(q.c.position == bindparam("b_position"))
            .values(sent_at=bindparam("b_now"), partition=bindparam("b_partition"), offset=bindparam("b_offset")),
            [
                {"b_position": row["position"], "b_now": now, "b_partition": ack.partition, "b_offset": ack.offset}
                for row, ack in zip(rows, acks, strict=True)
            ],
        )
        newest: dict[tuple[str, int], tuple[int, str]] = {}
        for row, ack in zip(rows, acks, strict=True):
            key = (ack.topic, ack.partition)
            if key not in newest or newest[key][0] < ack.offset:
                newest[key] = (ack.offset, row["event_id"])
        stmt = upsert_insert(conn)(h)
        stmt = stmt.on_conflict_do_update(
            index_elements=[h.c.topic, h.c.partition],
            set_={"offset": stmt.excluded.offset, "event_id": stmt.excluded.event_id, "updated_at": now},
            where=h.c.offset < stmt.excluded.offset,
        )
        await conn.execute(
            stmt,
            [
                {"topic": topic, "partition": partition, "offset": offset, "event_id": event_id, "updated_at": now}
                for (topic, partition), (offset, event_id) in newest.items()
            ],
        )

    def _traced_records(self, rows: Any) -> list[OutgoingRecord]:
        records = []
        for row in rows:
            headers: dict[str, str] = dict(row["headers"])
            parent = context_from_mapping(headers)
            with tracer.start_as_current_span(
                f"send {row['topic']}",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": row["topic"],
                    "messaging.message.id": headers.get("ce_id", ""),
                    "messaging.kafka.message.key": row["message_key"],
                },
            ):
                for name in TRACE_HEADERS:
                    headers.pop(name, None)
                PROPAGATOR.inject(headers)
            records.append(
                OutgoingRecord(
                    topic=row["topic"],
                    key=row["message_key"].encode(),
                    value=bytes(row["payload"]),
                    headers=[(k, v.encode()) for k, v in headers.items()],
                )
            )
        return records

    async def _prune_if_due(self) -> None:
        """Sent queue rows go after the retention period; the event store keeps every event."""
        now = datetime.now(UTC)
        if now - self._last_prune < _PRUNE_EVERY:
            return
        self._last_prune = now
        q = self.tables.queue
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(q).where(q.c.sent_at < now - self.retention))
        if result.rowcount:
            log.info("outbox pruned", extra={"rows": result.rowcount})

    async def _listen(self) -> Any | None:
        """A connection of its own hearing the writers' notifications, or None when none can be made now (the
        relay polls meanwhile and tries again next cycle). Its loss wakes the relay, which makes another."""
        import asyncpg

        url = make_url(self.engine.url).set(drivername="postgresql")
        conn = None
        try:
            conn = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=10)
            await conn.add_listener(self.notify_channel, lambda *_: self._wake.set())
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("outbox relay cannot listen for commits; polling", extra={"error": repr(exc)})
            if conn is not None:
                conn.terminate()
            return None
        conn.add_termination_listener(lambda _conn: self._wake.set())
        return conn


_TAKE_SHARDS = text("SELECT s FROM generate_series(0, :last) AS s WHERE pg_try_advisory_xact_lock(:ns, s)")


def _claim_statement(tables: OutboxTables, *, sharded: bool) -> Select[Any]:
    """The oldest unsent rows, ``limit`` of them; ``sharded`` (PostgreSQL): of the ``shards`` this relay locked,
    skipping rows another transaction holds. Built once a relay, so run on the driver (``send_shared.direct``)."""
    q, s, h = tables.queue, tables.store, tables.heads
    query = (
        select(q.c.position, q.c.topic, q.c.created_at, s.c.event_id, s.c.message_key, s.c.headers, s.c.payload)
        .join(s, s.c.position == q.c.position)
        .where(q.c.sent_at.is_(None))
    )
    if sharded:
        # The heads ride along (computed once by the planner): read after the shard locks were taken,
        # they include every head another relay committed before this batch is published.
        heads = select(func.json_object_agg(h.c.topic + " " + cast(h.c.partition, String), h.c.offset))
        query = query.add_columns(heads.scalar_subquery().label("heads"))
        query = query.where(InList(q.c.shard, "shards")).with_for_update(of=q, skip_locked=True)
    return query.order_by(q.c.position).limit(bindparam("limit", type_=Integer))


@functools.cache
def _mark_sent_statement(queue: str, heads: str) -> TextClause:
    return text(
        "WITH v AS (SELECT * FROM unnest(CAST(:positions AS bigint[]), CAST(:partitions AS int[]), "  # noqa: S608 - names from our metadata
        "CAST(:offsets AS bigint[]), CAST(:event_ids AS varchar[]), CAST(:topics AS varchar[])) "
        "AS v(position, partition, off, event_id, topic)), "
        f'marked AS (UPDATE {queue} SET sent_at = :now, partition = v.partition, "offset" = v.off '
        f"FROM v WHERE {queue}.position = v.position) "
        f'INSERT INTO {heads} (topic, partition, "offset", event_id, updated_at) '
        "SELECT DISTINCT ON (topic, partition) topic, partition, off, event_id, :now FROM v "
        "ORDER BY topic, partition, off DESC "
        'ON CONFLICT (topic, partition) DO UPDATE SET "offset" = excluded."offset", '
        "event_id = excluded.event_id, updated_at = excluded.updated_at "
        f'WHERE {heads}."offset" < excluded."offset"'
    )


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _heads_of(aggregated: dict[str, int] | None) -> dict[tuple[str, int], int]:
    """``{"topic partition": offset}`` as the claim query aggregates it."""
    found = {}
    for name, offset in (aggregated or {}).items():
        topic, _, partition = name.rpartition(" ")
        found[(topic, int(partition))] = int(offset)
    return found
