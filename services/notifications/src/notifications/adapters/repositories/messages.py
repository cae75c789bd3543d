"""Messages (each event as it is sent on) in SQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import messages
from notifications.domain.delivery import Message
from send_shared.db import upsert_insert


class SqlMessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, message: Message) -> bool:
        recorded = await self.session.execute(
            upsert_insert(self.session)(messages)
            .values(
                event_id=message.event_id,
                event_type=message.event_type,
                order_key=message.order_key,
                organisation_ids=list(message.organisation_ids),
                body=message.body,
                received_at=message.received_at,
            )
            .on_conflict_do_nothing()
        )
        return bool(getattr(recorded, "rowcount", 0))

    async def any_with_order_key(self, order_key: str) -> bool:
        found = await self.session.execute(
            select(messages.c.event_id).where(messages.c.order_key == order_key).limit(1)
        )
        return found.first() is not None
