"""Inbox: the ids of events a consumer group has applied, written in the same transaction as the effect.

A redelivered event finds its id already here and is skipped, so each effect is applied
once. Rows are pruned after ``inbox_retention_days`` (at least 7, and longer than any
replay window the operators use); the consumer runtime prunes in the background.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, delete
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from send_shared import direct
from send_shared.db import dialect_name, json_rows, json_rows_insert


def define_inbox_table(metadata: MetaData, name: str = "inbox") -> Table:
    return Table(
        name,
        metadata,
        Column("consumer_group", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        Index(f"ix_{name}_processed_at", "processed_at"),
    )


class Inbox:
    def __init__(self, table: Table, consumer_group: str) -> None:
        self.table = table
        self.consumer_group = consumer_group
        # SQLite's batch claim; PostgreSQL's is ``claims_statement``.
        self._claim_many_sqlite = sqlite.insert(table).on_conflict_do_nothing().returning(table.c.event_id)

    async def claim_many(self, db: AsyncSession | AsyncConnection, events: Sequence[tuple[str, str]]) -> list[bool]:
        """Records a batch of (event id, event type) as processed, in one statement: for each, whether it is claimed
        now (False: it was processed before, and the caller skips its effect). Of an id that comes twice in the
        batch only the first is claimed. The consumer runtime claims with its positions
        (``ConsumerPositions.save_claiming``)."""
        if not events:
            return []
        rows = self.claim_rows(events, datetime.now(UTC))
        if dialect_name(db) == "postgresql":
            found = await direct.execute(db, claims_statement(self.table), {"claims": json_rows(rows)})
        else:
            found = await db.execute(self._claim_many_sqlite, rows)
        return claimed(events, set(found.scalars()))

    def claim_rows(self, events: Sequence[tuple[str, str]], now: datetime) -> list[dict[str, Any]]:
        """The rows ``claim_many`` inserts: each id once, with its type as it first came."""
        first_types = dict(reversed(events))
        return [{"consumer_group": self.consumer_group, "event_id": event_id, "event_type": event_type,
                 "processed_at": now} for event_id, event_type in first_types.items()]  # fmt: skip

    async def prune(self, engine: AsyncEngine, retention: timedelta) -> int:
        async with engine.begin() as conn:
            result = await conn.execute(
                delete(self.table).where(
                    self.table.c.consumer_group == self.consumer_group,
                    self.table.c.processed_at < datetime.now(UTC) - retention,
                )
            )
        return int(result.rowcount or 0)


def claimed(events: Sequence[tuple[str, str]], fresh: set[str]) -> list[bool]:
    """For each event, whether it was claimed now: its id among those inserted (``fresh``), the first time it
    comes."""
    left = set(fresh)
    found = []
    for event_id, _type in events:
        found.append(event_id in left)
        left.discard(event_id)
    return found


@functools.cache
def claims_statement(table: Table) -> ReturningInsert[Any]:
    """PostgreSQL: a batch's claims from one JSON document (``send_shared.db.json_rows_insert``), returning the ids
    claimed now; one statement whatever the batch's size. The consumer runtime's adds its positions to it as a
    data-modifying WITH (``ConsumerPositions.save_claiming``)."""
    return json_rows_insert(table, "claims").on_conflict_do_nothing().returning(table.c.event_id)
