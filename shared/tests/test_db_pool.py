"""Pooled PostgreSQL connections: one the server closed is replaced at checkout, without a ping per checkout; a
burst's connections are kept for the next one."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def test_a_connection_the_server_closed_is_replaced_at_checkout(pg_engine: AsyncEngine) -> None:
    async with pg_engine.connect() as first, pg_engine.connect() as second:
        pids = [(await c.execute(text("SELECT pg_backend_pid()"))).scalar_one() for c in (first, second)]
    async with pg_engine.connect() as conn:  # a restart or an idle timeout: the server ends a pooled session
        mine = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        victim = next(pid for pid in pids if pid != mine)
        assert (await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})).scalar_one()
    await asyncio.sleep(0.2)  # the pooled connection learns of it when its socket ends
    async with pg_engine.connect() as first, pg_engine.connect() as second:  # both pooled ones are taken
        now = [(await c.execute(text("SELECT pg_backend_pid()"))).scalar_one() for c in (first, second)]
    assert victim not in now


async def test_checkout_sends_no_ping(pg_engine: AsyncEngine) -> None:
    """One statement, one round trip: the transaction count moves by the work alone."""

    async def commits() -> int:
        async with pg_engine.connect() as conn:
            found = await conn.execute(
                text("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
            )
            return int(found.scalar_one())

    async with pg_engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await asyncio.sleep(0.6)  # statistics reach pg_stat_database at most every 500 ms
    before = await commits()
    for _ in range(20):
        async with pg_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    await asyncio.sleep(0.6)
    assert await commits() - before < 30  # with a ping on checkout: 20 more (its BEGIN ... ROLLBACK)


async def test_a_burst_s_connections_are_kept_for_the_next(pg_engine: AsyncEngine) -> None:
    """Fifteen at once, twice: the second burst is served by the first one's sessions. (With connections beyond a
    smaller pool's size closed as they came back, each burst forked backends afresh.)"""

    async def burst() -> set[int]:
        held = asyncio.Event()

        async def one() -> int:
            async with pg_engine.connect() as conn:
                pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
                await held.wait()  # all fifteen checked out at once
                return pid

        tasks = [asyncio.create_task(one()) for _ in range(15)]
        await asyncio.sleep(0.5)
        held.set()
        return set(await asyncio.gather(*tasks))

    first = await burst()
    assert len(first) == 15
    assert await burst() == first
