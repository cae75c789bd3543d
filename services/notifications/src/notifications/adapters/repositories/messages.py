"""Messages (each event as it is sent on) in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, String, bindparam, func, literal, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import deliveries, messages
from notifications.adapters.repositories.deliveries import SqlDeliveryRepository
from notifications.domain.delivery import DeliveryStatus, Message
from send_shared import direct
from send_shared.db import ByDialect, dialect_name

# Built once (every event is recorded as it goes on): a statement built per call costs its construction and its
# cache key every time.
_ADD = ByDialect(lambda insert: insert(messages).on_conflict_do_nothing())


def _add_with_deliveries() -> Select[Any]:
    """PostgreSQL: the message and, if it is new, its first deliveries (one for each endpoint in the array, due at
    once) in one statement (data-modifying WITHs run to completion whether or not the query reads them); it counts
    the messages added, 1 or 0. The message's values are named ``message_<column>``."""
    added = (
        postgresql.insert(messages)
        .values({column.name: bindparam(f"message_{column.name}", type_=column.type) for column in messages.c})
        .on_conflict_do_nothing()
        .returning(messages.c.event_id, messages.c.order_key, messages.c.received_at)
        .cte("added")
    )
    targets = func.unnest(bindparam("endpoint_ids", type_=ARRAY(String))).table_valued("endpoint_id")
    targets = targets.render_derived("target")
    first = select(targets.c.endpoint_id, added.c.event_id, literal(0), added.c.order_key,
                   literal(DeliveryStatus.PENDING.value), literal(0), added.c.received_at,
                   added.c.received_at).select_from(added.join(targets, true()))  # fmt: skip
    columns = ["endpoint_id", "event_id", "round", "order_key", "status", "attempts", "next_attempt_at", "created_at"]
    queued = postgresql.insert(deliveries).from_select(columns, first).on_conflict_do_nothing().cte("queued")
    return select(func.count()).select_from(added).add_cte(queued)


_ADD_WITH_DELIVERIES = _add_with_deliveries()
_ANY_WITH_ORDER_KEY = select(messages.c.event_id).where(messages.c.order_key == bindparam("order_key")).limit(1)


class SqlMessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, message: Message, deliver_to: Sequence[str] = ()) -> bool:
        row = {
            "event_id": message.event_id,
            "event_type": message.event_type,
            "order_key": message.order_key,
            "organisation_ids": list(message.organisation_ids),
            "body": message.body,
            "received_at": message.received_at,
        }
        if dialect_name(self.session) == "postgresql":
            values = {f"message_{name}": value for name, value in row.items()}
            added = await direct.execute(
                self.session, _ADD_WITH_DELIVERIES, {**values, "endpoint_ids": list(deliver_to)}
            )
            return bool(added.scalar())
        # SQLite has no INSERT inside a WITH: the message, then its deliveries.
        if not (await direct.execute(self.session, _ADD(self.session), row)).rowcount:
            return False
        queue = SqlDeliveryRepository(self.session).queue
        for endpoint_id in deliver_to:
            await queue(endpoint_id, message.event_id, message.order_key, 0, message.received_at)
        return True

    async def any_with_order_key(self, order_key: str) -> bool:
        found = await self.session.execute(_ANY_WITH_ORDER_KEY, {"order_key": order_key})
        return found.first() is not None
