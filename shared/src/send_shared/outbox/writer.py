"""Adds events to the event store and the publish queue inside the caller's transaction."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import TextClause, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from send_shared import direct
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
        if dialect_name(db) == "postgresql":
            await direct.execute(db, self._postgres_statement, self._postgres_arrays(rows, now))
            return
        store, queue = self.tables.store, self.tables.queue
        stored = (
            insert(store).values(rows).returning(store.c.position, store.c.topic, store.c.shard, store.c.created_at)
        )
        positions = (await db.execute(stored)).all()
        await db.execute(insert(queue), [dict(row._mapping) for row in positions])

    def _postgres_arrays(self, rows: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
        return {
            "event_ids": [r["event_id"] for r in rows],
            "topics": [r["topic"] for r in rows],
            "keys": [r["message_key"] for r in rows],
            "shards": [r["shard"] for r in rows],
            "headers": [orjson.dumps(r["headers"]).decode() for r in rows],
            "payloads": [r["payload"] for r in rows],
            "created": [now] * len(rows),
            "channel": self.notify_channel,
        }

    @property
    def _postgres_statement(self) -> TextClause:
        return _postgres_statement(self.tables.store.name, self.tables.queue.name)


@functools.cache
def _postgres_statement(store: str, queue: str) -> TextClause:
    """One statement, the same whatever the number of events (so prepared once, where a multi-row insert
    built per call cost three times the CPU): the events go into the store from arrays, in the order
    given (positions are handed out in that order, which keeps each key's events in order), the queue
    takes what the store returns, and ``pg_notify``, delivered at commit and only if the transaction
    commits, wakes the relay at once."""
    # Kept by table names, not per writer: a unit of work makes a writer each time, and the statement is compiled
    # once (send_shared.direct) for as long as the same object comes back.
    return text(
        f"WITH written AS (INSERT INTO {store} (event_id, topic, message_key, shard, headers, payload, created_at) "  # noqa: S608 - names from our metadata
        "SELECT e, t, k, s, h, p, c FROM unnest(CAST(:event_ids AS varchar[]), CAST(:topics AS varchar[]), "
        "CAST(:keys AS varchar[]), CAST(:shards AS smallint[]), CAST(:headers AS json[]), "
        "CAST(:payloads AS bytea[]), CAST(:created AS timestamptz[])) WITH ORDINALITY AS u(e, t, k, s, h, p, c, n) "
        "ORDER BY n RETURNING position, topic, shard, created_at), "
        f"queued AS (INSERT INTO {queue} (position, topic, shard, created_at) "
        "SELECT position, topic, shard, created_at FROM written) "
        "SELECT pg_notify(:channel, '')"
    )
