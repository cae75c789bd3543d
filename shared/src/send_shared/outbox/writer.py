"""Adds events to the event store and the publish queue inside the caller's transaction."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Select, Table, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from send_shared import direct
from send_shared.db import dialect_name, insert_into, json_rows, json_rows_insert, unnest_arrays, unnest_insert
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

    async def add_many(
        self,
        db: AsyncSession | AsyncConnection,
        items: Sequence[tuple[CloudEvent, str, str]],
        *,
        also: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]] = (),
    ) -> None:
        """Store events (event, topic, key) and queue them in the open transaction; the relay sees them only
        once it commits. ``also`` holds other rows of the same transaction (a table and its rows, each row giving
        every column by its name, with values JSON can carry: no bytes): on PostgreSQL they go in the same
        statement (``send_shared.db.json_rows_insert``), one round trip for all of it."""
        if not items and not any(rows for _table, rows in also):
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
            statement = _postgres_statement(self.tables, tuple(table for table, _rows in also))
            params = {"channel": self.notify_channel, **unnest_arrays(self.tables.store, _EVENT_COLUMNS, "event", rows)}
            params.update({f"also{number}": json_rows(table_rows) for number, (_table, table_rows) in enumerate(also)})
            await direct.execute(db, statement, params)
            return
        for table, table_rows in also:  # SQLite has no INSERT inside a WITH
            await direct.execute(db, insert_into(table), list(table_rows))
        if not rows:
            return
        store, queue = self.tables.store, self.tables.queue
        stored = (
            insert(store).values(rows).returning(store.c.position, store.c.topic, store.c.shard, store.c.created_at)
        )
        positions = (await db.execute(stored)).all()
        await db.execute(insert(queue), [dict(row._mapping) for row in positions])


_EVENT_COLUMNS = ("event_id", "topic", "message_key", "shard", "headers", "payload", "created_at")


@functools.cache
def _postgres_statement(tables: OutboxTables, also: tuple[Table, ...]) -> Select[Any]:
    """One statement, the same whatever the number of events and rows (so prepared once, where a multi-row insert
    built per call cost three times the CPU): the events go into the store from arrays, in the order given
    (positions are handed out in that order, which keeps each key's events in order), the queue takes what the
    store returns, the other tables take their rows, and ``pg_notify``, delivered at commit and only if the
    transaction commits, wakes the relay at once when an event was written."""
    store, queue = tables.store, tables.queue
    written = (
        unnest_insert(store, _EVENT_COLUMNS, "event")
        .returning(store.c.position, store.c.topic, store.c.shard, store.c.created_at)
        .cte("written")
    )
    queued = postgresql.insert(queue).from_select(
        ["position", "topic", "shard", "created_at"],
        select(written.c.position, written.c.topic, written.c.shard, written.c.created_at),
    )
    others = [
        json_rows_insert(table, f"also{number}").cte(f"also{number}_written") for number, table in enumerate(also)
    ]
    notify = select(func.pg_notify(bindparam("channel"), "")).select_from(written).limit(1)
    return notify.add_cte(queued.cte("queued"), *others)
