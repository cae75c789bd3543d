"""Where a consumer group is in each partition, kept in its own database with its effects.

Each row says: the next offset to read, and the fingerprint (event id) of the last record applied.
It is written in the transaction that applied the record, so it never disagrees with the effects.
On assignment the consumer resumes here, but only after the broker shows it still holds that last
record: a log that was lost or replaced under the group (a restarted broker, a topic created again)
is read again from its beginning instead, and the inbox drops what was applied before. Offsets
committed to Kafka are kept for lag tools, not trusted for position.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aiokafka import TopicPartition
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from send_shared import direct
from send_shared.db import ByDialect, dialect_name, json_rows, json_rows_insert
from send_shared.inbox import Inbox, claimed, claims_statement


class Position(NamedTuple):
    next_offset: int
    fingerprint: str


def define_positions_table(metadata: MetaData, name: str = "consumer_positions") -> Table:
    return Table(
        name,
        metadata,
        Column("consumer_group", String(100), primary_key=True),
        Column("topic", String(249), primary_key=True),
        Column("partition", Integer, primary_key=True, autoincrement=False),
        Column("next_offset", BigInteger, nullable=False),
        Column("fingerprint", String(100), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


class ConsumerPositions:
    def __init__(self, table: Table, consumer_group: str) -> None:
        self.table = table
        self.consumer_group = consumer_group
        self._save = ByDialect(lambda insert: _upsert(insert, table))  # every batch: built once

    async def save(self, db: AsyncSession | AsyncConnection, tp: TopicPartition, position: Position) -> None:
        await self.save_many(db, [(tp, position)])

    async def save_many(
        self, db: AsyncSession | AsyncConnection, positions: Sequence[tuple[TopicPartition, Position]]
    ) -> None:
        """Each partition's position, in one round trip on asyncpg (its executemany)."""
        rows = self._rows(positions, datetime.now(UTC))
        await direct.execute(db, self._save(db), rows[0] if len(rows) == 1 else rows)

    def _rows(self, positions: Sequence[tuple[TopicPartition, Position]], now: datetime) -> list[dict[str, Any]]:
        return [{"consumer_group": self.consumer_group, "topic": tp.topic, "partition": tp.partition,
                 "next_offset": position.next_offset, "fingerprint": position.fingerprint, "updated_at": now}
                for tp, position in positions]  # fmt: skip

    async def save_claiming(
        self,
        db: AsyncSession | AsyncConnection,
        positions: Sequence[tuple[TopicPartition, Position]],
        inbox: Inbox,
        events: Sequence[tuple[str, str]],
    ) -> list[bool]:
        """``save_many(positions)`` and ``inbox.claim_many(events)`` (what it returns) in one statement on PostgreSQL:
        every consumer transaction makes both, and at a steady load its fixed round trips (BEGIN, these two, COMMIT)
        are much of what a small batch costs. The positions may be saved before the handlers run: the transaction
        keeps all of it or none."""
        if dialect_name(db) != "postgresql" or not events:
            claims = await inbox.claim_many(db, events)
            await self.save_many(db, positions)
            return claims
        now = datetime.now(UTC)
        found = await direct.execute(db, _saved_claiming(self.table, inbox.table), {
            "positions": json_rows(self._rows(positions, now)), "claims": json_rows(inbox.claim_rows(events, now)),
        })  # fmt: skip
        return claimed(events, set(found.scalars()))

    async def load(self, engine: AsyncEngine, partitions: set[TopicPartition]) -> dict[TopicPartition, Position]:
        if not partitions:
            return {}
        t = self.table
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(t.c.topic, t.c.partition, t.c.next_offset, t.c.fingerprint).where(
                    t.c.consumer_group == self.consumer_group, t.c.topic.in_({tp.topic for tp in partitions})
                )
            )
            found = {TopicPartition(topic, partition): Position(offset, fp) for topic, partition, offset, fp in rows}
        return {tp: position for tp, position in found.items() if tp in partitions}


def _upsert(insert: Any, t: Table) -> Any:
    stmt = insert(t)
    return stmt.on_conflict_do_update(
        index_elements=[t.c.consumer_group, t.c.topic, t.c.partition],
        set_={
            "next_offset": stmt.excluded.next_offset,
            "fingerprint": stmt.excluded.fingerprint,
            "updated_at": stmt.excluded.updated_at,
        },
    )


@functools.cache
def _saved_claiming(positions: Table, inbox: Table) -> ReturningInsert[Any]:
    """PostgreSQL: the positions (one JSON document) upserted in a data-modifying WITH of the inbox's claims (one
    JSON document), which return the event ids claimed."""
    saved = _upsert(lambda table: json_rows_insert(table, "positions"), positions).cte("saved")
    return claims_statement(inbox).add_cte(saved)
