"""Other rows of a transaction written with its events (``OutboxWriter.add_many(..., also=...)``): on PostgreSQL one
statement, on SQLite one statement a table; the same rows either way, all or none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from shared_testkit import make_event, outbox
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import as_utc, is_unique_violation
from send_shared.outbox import OutboxWriter

notes = Table(
    "writer_notes",
    MetaData(),
    Column("note_id", Integer, primary_key=True, autoincrement=False),
    Column("scope", JSON, nullable=False),
    Column("remark", String(50), nullable=True),
    Column("written_at", DateTime(timezone=True), nullable=False),
)
AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
ROWS = [
    {"note_id": 2, "scope": ["svc-a", "svc-b"], "remark": None, "written_at": AT},
    {"note_id": 1, "scope": {"nested": [1, 2]}, "remark": 'it\'s "quoted"', "written_at": AT},
    {"note_id": 3, "scope": [], "remark": "", "written_at": AT},
]


@pytest.fixture
async def engine(any_engine: AsyncEngine) -> AsyncEngine:
    async with any_engine.begin() as conn:
        await conn.run_sync(notes.metadata.create_all)
    return any_engine


async def _stored(engine: AsyncEngine) -> tuple[list[dict[str, object]], int]:
    async with engine.connect() as conn:
        rows = [dict(row) for row in (await conn.execute(select(notes).order_by(notes.c.note_id))).mappings()]
        events = (await conn.execute(select(func.count()).select_from(outbox.store))).scalar_one()
    for row in rows:  # SQLite keeps no zone: the value was written in UTC
        row["written_at"] = as_utc(row["written_at"])  # type: ignore[arg-type]
    return rows, events


async def test_rows_go_in_with_the_events_as_given(engine: AsyncEngine) -> None:
    events = [make_event("key-1", version) for version in (1, 2)]
    async with engine.begin() as conn:
        await OutboxWriter(outbox).add_many(conn, [(e, "topic", "key-1") for e in events], also=[(notes, ROWS)])
    rows, stored_events = await _stored(engine)
    assert rows == [ROWS[1], ROWS[0], ROWS[2]]
    assert stored_events == 2


async def test_rows_without_events_are_written_too(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await OutboxWriter(outbox).add_many(conn, [], also=[(notes, ROWS[:1]), (notes, [])])
    assert await _stored(engine) == ([ROWS[0]], 0)


async def test_a_refused_row_keeps_none_of_it(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await OutboxWriter(outbox).add_many(conn, [], also=[(notes, ROWS[:1])])
    event = make_event("key-2", 1)
    async with engine.connect() as conn:
        await conn.begin()
        with pytest.raises(IntegrityError) as refused:
            await OutboxWriter(outbox).add_many(conn, [(event, "topic", "key-2")], also=[(notes, ROWS)])
        await conn.rollback()
    assert is_unique_violation(refused.value)
    assert await _stored(engine) == ([ROWS[0]], 0)
