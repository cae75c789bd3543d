"""The inbox claims a batch of event ids in one statement, on PostgreSQL and SQLite alike: an id is claimed the
first time it is seen, whether earlier in the same batch, in an earlier batch, or by the one-at-a-time claim."""

from __future__ import annotations

from shared_testkit import inbox as inbox_table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import AsyncSession as Session

from send_shared.inbox import Inbox


async def test_a_batch_claims_each_id_once(any_engine: AsyncEngine) -> None:
    inbox = Inbox(inbox_table, "group-a")
    async with Session(any_engine) as session, session.begin():
        assert await inbox.claim(session, "e1", "t")
        claims = await inbox.claim_many(session, [("e1", "t"), ("e2", "t"), ("e3", "u"), ("e2", "t"), ("e4", "t")])
    assert claims == [False, True, True, False, True]
    async with Session(any_engine) as session, session.begin():
        assert await inbox.claim_many(session, [("e4", "t"), ("e5", "t")]) == [False, True]
        assert not await inbox.claim(session, "e5", "t")
        assert await Inbox(inbox_table, "group-b").claim_many(session, [("e1", "t")]) == [True]  # another group's
        assert await inbox.claim_many(session, []) == []
    async with Session(any_engine) as session:
        rows = await session.execute(select(inbox_table.c.consumer_group, func.count()).group_by("consumer_group"))
        assert sorted(tuple(row) for row in rows) == [("group-a", 5), ("group-b", 1)]


async def test_a_batch_rolled_back_claims_nothing(any_engine: AsyncEngine) -> None:
    inbox = Inbox(inbox_table, "group-a")
    async with Session(any_engine) as session, session.begin():
        assert await inbox.claim_many(session, [("e1", "t"), ("e2", "t")]) == [True, True]
        await session.rollback()
    async with Session(any_engine) as session, session.begin():
        assert await inbox.claim_many(session, [("e2", "t"), ("e1", "t")]) == [True, True]
