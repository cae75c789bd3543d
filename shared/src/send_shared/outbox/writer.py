"""Adds events to the event store and the publish queue inside the caller's transaction."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from send_shared.db import dialect_name
from send_shared.events.envelope import CloudEvent, encode_headers
from send_shared.outbox.table import SHARDS, OutboxTables
from send_shared.telemetry import current_trace_headers

DEFAULT_CHANNEL = "outbox_ready"


def shard_of(key: str) -> int:
    return zlib.crc32(key.encode()) % SHARDS


class OutboxWriter:
    def __init__(self, tables: OutboxTables, *, notify_channel: str = DEFAULT_CHANNEL) -> None:
        self.tables = tables
        self.notify_channel = notify_channel

    async def add(self, db: AsyncSession | AsyncConnection, event: CloudEvent, *, topic: str, key: str) -> None:
        await self.add_many(db, [(event, topic, key)])

    async def add_many(self, db: AsyncSession | AsyncConnection, items: Sequence[tuple[CloudEvent, str, str]]) -> None:
        """Store events (event, topic, key) and queue them in the open transaction; the relay sees them only
        once it commits."""
        if not items:
            return
        trace_headers = current_trace_headers()
        now = datetime.now(UTC)
        rows = []
        for event, topic, key in items:
            headers = {name: value.decode() for name, value in encode_headers(event)}
            headers.update(trace_headers)
            rows.append(
                {
                    "event_id": event.id,
                    "topic": topic,
                    "message_key": key,
                    "shard": shard_of(key),
                    "headers": headers,
                    "payload": orjson.dumps(event.data),
                    "created_at": now,
                }
            )
        store, queue = self.tables.store, self.tables.queue
        stored = (
            insert(store).values(rows).returning(store.c.position, store.c.topic, store.c.shard, store.c.created_at)
        )
        if dialect_name(db) == "postgresql":
            # One round trip: the queue rows are inserted from what the store insert returns.
            written = stored.cte("written")
            await db.execute(
                insert(queue).from_select(
                    ["position", "topic", "shard", "created_at"],
                    select(written.c.position, written.c.topic, written.c.shard, written.c.created_at),
                )
            )
            # Delivered at commit, and only if the transaction commits: wakes the relay at once.
            await db.execute(text("SELECT pg_notify(:channel, '')"), {"channel": self.notify_channel})
            return
        positions = (await db.execute(stored)).all()
        await db.execute(insert(queue), [dict(row._mapping) for row in positions])
