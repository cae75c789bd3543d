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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Table, delete, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from send_shared.db import as_utc
from send_shared.kafka import OutgoingRecord, publish_all
from send_shared.metrics import OUTBOX_COMMIT_TO_PUBLISH, OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED
from send_shared.outbox.table import SHARDS
from send_shared.outbox.writer import DEFAULT_CHANNEL
from send_shared.telemetry import PROPAGATOR, TRACE_HEADERS, context_from_mapping

log = logging.getLogger(__name__)
tracer = trace.get_tracer("send_shared.outbox")

_ADVISORY_NAMESPACE = 0x5E0D  # first key of pg_try_advisory_xact_lock(int, int); the shard is the second
_PRUNE_EVERY = timedelta(minutes=10)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        retention: timedelta = timedelta(days=7),
        notify_channel: str = DEFAULT_CHANNEL,
    ) -> None:
        self.engine = engine
        self.table = table
        self.producer = producer
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self.notify_channel = notify_channel
        self._wake = asyncio.Event()
        self._postgres = engine.dialect.name == "postgresql"
        self._last_prune = datetime.min.replace(tzinfo=UTC)

    async def run(self, stop: asyncio.Event) -> None:
        listener = await self._listen() if self._postgres else None
        failures = 0
        try:
            while not stop.is_set():
                # Cleared before the cycle, so a commit notified while it runs wakes the next wait at once.
                self._wake.clear()
                try:
                    while await self.relay_once() == self.batch_size and not stop.is_set():
                        pass
                    await self._prune_if_due()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failures += 1
                    OUTBOX_PUBLISH_FAILURES.inc()
                    log.exception("outbox relay cycle failed", extra={"consecutive_failures": failures})
                    await _sleep_or_stop(stop, min(0.2 * 2**failures, 10.0))
                    continue
                await _wait_any(stop, self._wake, self.poll_interval)
        finally:
            if listener is not None:
                await listener.close()

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were published."""
        async with self.engine.begin() as conn:
            shards = await self._take_shards(conn) if self._postgres else None
            if shards == []:
                return 0
            rows = (await conn.execute(self._claim_query(shards))).mappings().all()
            if not rows:
                return 0
            await publish_all(self.producer, self._traced_records(rows))
            now = datetime.now(UTC)
            ids = [row["id"] for row in rows]
            await conn.execute(update(self.table).where(self.table.c.id.in_(ids)).values(sent_at=now))
        for row in rows:
            OUTBOX_PUBLISHED.labels(row["topic"]).inc()
            OUTBOX_COMMIT_TO_PUBLISH.observe(max(0.0, (now - as_utc(row["created_at"])).total_seconds()))
        return len(rows)

    async def _take_shards(self, conn: AsyncConnection) -> list[int]:
        """Every shard no other relay holds, locked until this transaction ends. Taken in a statement of
        its own, before the rows are read: a lock tried row by row inside the claiming query could fail
        on one row and succeed on a later row of the same shard, skipping the earlier event."""
        result = await conn.execute(
            text("SELECT s FROM generate_series(0, :last) AS s WHERE pg_try_advisory_xact_lock(:ns, s)"),
            {"last": SHARDS - 1, "ns": _ADVISORY_NAMESPACE},
        )
        return list(result.scalars())

    def _claim_query(self, shards: list[int] | None) -> Any:
        t = self.table
        query = select(t.c.id, t.c.topic, t.c.message_key, t.c.headers, t.c.payload, t.c.created_at).where(
            t.c.sent_at.is_(None)
        )
        if shards is not None:
            query = query.where(t.c.shard.in_(shards)).with_for_update(skip_locked=True)
        return query.order_by(t.c.id).limit(self.batch_size)

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
        now = datetime.now(UTC)
        if now - self._last_prune < _PRUNE_EVERY:
            return
        self._last_prune = now
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(self.table).where(self.table.c.sent_at < now - self.retention))
        if result.rowcount:
            log.info("outbox pruned", extra={"rows": result.rowcount})

    async def _listen(self) -> Any:
        import asyncpg

        url = make_url(self.engine.url).set(drivername="postgresql")
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        await conn.add_listener(self.notify_channel, lambda *_: self._wake.set())
        return conn


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, at_most: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=at_most, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
