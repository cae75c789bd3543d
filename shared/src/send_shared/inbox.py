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

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, TextClause, delete, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from send_shared import direct
from send_shared.db import dialect_name


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
        # SQLite's batch claim; PostgreSQL's claims from arrays (``_claim_from_arrays``).
        self._claim_many_sqlite = sqlite.insert(table).on_conflict_do_nothing().returning(table.c.event_id)

    async def claim_many(self, db: AsyncSession | AsyncConnection, events: Sequence[tuple[str, str]]) -> list[bool]:
        """Records a batch of (event id, event type) as processed, in one statement: for each, whether it is claimed
        now (False: it was processed before, and the caller skips its effect). Of an id that comes twice in the
        batch only the first is claimed. The consumer runtime claims with its positions
        (``ConsumerPositions.save_claiming``)."""
        if not events:
            return []
        now = datetime.now(UTC)
        first_types = dict(reversed(events))  # an id's type as it first came
        if dialect_name(db) == "postgresql":
            found = await direct.execute(db, _claim_from_arrays(self.table), {
                "consumer_group": self.consumer_group, "event_ids": list(first_types),
                "event_types": list(first_types.values()), "processed_at": now,
            })  # fmt: skip
            fresh = set(found.scalars())
        else:
            fresh = set((await db.execute(self._claim_many_sqlite, self.claim_rows(events, now))).scalars())
        return claimed(events, fresh)

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
def _claim_from_arrays(table: Table) -> TextClause:
    """PostgreSQL: a batch's claims from arrays, one statement whatever the batch's size (so prepared once and run
    on the driver; a multi-row ``INSERT`` is new SQL for each size)."""
    name = postgresql.dialect().identifier_preparer.format_table(table)  # type: ignore[no-untyped-call]  # quoted, with any schema
    return text(
        f"INSERT INTO {name} (consumer_group, event_id, event_type, processed_at) "  # noqa: S608 - a name from our metadata
        "SELECT CAST(:consumer_group AS varchar), v.event_id, v.event_type, CAST(:processed_at AS timestamptz) "
        "FROM unnest(CAST(:event_ids AS varchar[]), CAST(:event_types AS varchar[])) AS v(event_id, event_type) "
        "ON CONFLICT DO NOTHING RETURNING event_id"
    )
