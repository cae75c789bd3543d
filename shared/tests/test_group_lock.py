"""A group's lock: consumers share it, a rebuild takes it alone; on PostgreSQL and SQLite, across processes'
worth of holders (each holder its own connection or file handle)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.consumer.exclusion import GroupBusy, GroupLock


async def test_consumers_share_the_lock_and_a_rebuild_waits_for_all_of_them(any_engine: AsyncEngine) -> None:
    first, second = GroupLock(any_engine, "g"), GroupLock(any_engine, "g")
    assert await first.try_shared()
    assert await second.try_shared()
    with pytest.raises(GroupBusy):
        async with GroupLock(any_engine, "g").exclusive():
            pass
    await first.release()
    with pytest.raises(GroupBusy):
        async with GroupLock(any_engine, "g").exclusive():
            pass
    await second.release()
    async with GroupLock(any_engine, "g").exclusive():
        assert not await GroupLock(any_engine, "g").try_shared(), "a consumer starting during a rebuild must wait"
        assert await GroupLock(any_engine, "other").try_shared(), "another group is not concerned"
    assert await first.try_shared()
    await first.release()
