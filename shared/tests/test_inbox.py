"""The inbox claims a batch of event ids in one statement, on PostgreSQL and SQLite alike: an id is claimed the
first time it is seen, whether earlier in the same batch or in an earlier batch; the consumer runtime claims with
its positions, in one statement on PostgreSQL."""

from __future__ import annotations

from aiokafka import TopicPartition
from shared_testkit import inbox as inbox_table
from shared_testkit import positions as positions_table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import AsyncSession as Session

from send_shared.consumer.positions import ConsumerPositions, Position
from send_shared.inbox import Inbox

TOPIC = "referrals.events.v1"


async def test_a_batch_claims_each_id_once(any_engine: AsyncEngine) -> None:
    inbox = Inbox(inbox_table, "group-a")
    positions = ConsumerPositions(positions_table, "group-a")
    async with Session(any_engine) as session, session.begin():
        assert await positions.save_claiming(session, [(TopicPartition(TOPIC, 0), Position(1, "e1"))], inbox,
                                             [("e1", "t")]) == [True]  # fmt: skip
        claims = await inbox.claim_many(session, [("e1", "t"), ("e2", "t"), ("e3", "u"), ("e2", "t"), ("e4", "t")])
    assert claims == [False, True, True, False, True]
    async with Session(any_engine) as session, session.begin():
        assert await inbox.claim_many(session, [("e4", "t"), ("e5", "t")]) == [False, True]
        saved = [(TopicPartition(TOPIC, 0), Position(7, "e5")), (TopicPartition(TOPIC, 1), Position(3, "e6"))]
        assert await positions.save_claiming(session, saved, inbox, [("e5", "t"), ("e6", "t"), ("e6", "t")]) == [
            False, True, False,
        ]  # fmt: skip
        assert await Inbox(inbox_table, "group-b").claim_many(session, [("e1", "t")]) == [True]  # another group's
        assert await inbox.claim_many(session, []) == []
    async with Session(any_engine) as session:
        rows = await session.execute(select(inbox_table.c.consumer_group, func.count()).group_by("consumer_group"))
        assert sorted(tuple(row) for row in rows) == [("group-a", 6), ("group-b", 1)]
        kept = await session.execute(select(positions_table.c.partition, positions_table.c.next_offset,
                                            positions_table.c.fingerprint).order_by(positions_table.c.partition))  # fmt: skip
        assert [tuple(row) for row in kept] == [(0, 7, "e5"), (1, 3, "e6")]


async def test_a_batch_rolled_back_claims_nothing(any_engine: AsyncEngine) -> None:
    inbox = Inbox(inbox_table, "group-a")
    positions = ConsumerPositions(positions_table, "group-a")
    async with Session(any_engine) as session, session.begin():
        saved = [(TopicPartition(TOPIC, 0), Position(2, "e2"))]
        assert await positions.save_claiming(session, saved, inbox, [("e1", "t"), ("e2", "t")]) == [True, True]
        await session.rollback()
    async with Session(any_engine) as session, session.begin():
        assert await inbox.claim_many(session, [("e2", "t"), ("e1", "t")]) == [True, True]
        assert (await session.execute(select(func.count()).select_from(positions_table))).scalar_one() == 0
