"""Messages (each event as it is sent on) in SQL."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import messages
from notifications.domain.delivery import Message
from send_shared import direct
from send_shared.db import ByDialect

# Built once (every event is recorded as it goes on): a statement built per call costs its construction and its
# cache key every time.
_ADD = ByDialect(lambda insert: insert(messages).on_conflict_do_nothing())
_ANY_WITH_ORDER_KEY = select(messages.c.event_id).where(messages.c.order_key == bindparam("order_key")).limit(1)


class SqlMessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, message: Message) -> bool:
        recorded = await direct.execute(
            self.session,
            _ADD(self.session),
            {
                "event_id": message.event_id,
                "event_type": message.event_type,
                "order_key": message.order_key,
                "organisation_ids": list(message.organisation_ids),
                "body": message.body,
                "received_at": message.received_at,
            },
        )
        return bool(recorded.rowcount)

    async def any_with_order_key(self, order_key: str) -> bool:
        found = await self.session.execute(_ANY_WITH_ORDER_KEY, {"order_key": order_key})
        return found.first() is not None
