"""A message is recorded once, with its first deliveries (SQLite and PostgreSQL): a message recorded before queues
nothing, whatever endpoints are asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from notifications.domain.delivery import Message

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


async def test_a_new_message_comes_with_a_first_delivery_to_each_endpoint_and_a_repeat_with_none(
    unit_of_work: Any,
) -> None:
    message = Message("ev-1", "uk.send.referral.submitted.v1", "r-1", ("org-a",), {"id": "ev-1"}, NOW)
    lone = Message("ev-2", "uk.send.referral.accepted.v1", "r-1", ("org-a",), {"id": "ev-2"}, NOW)
    async with unit_of_work() as uow:
        assert await uow.messages.add(message, deliver_to=["ep-1", "ep-2"]) is True
        assert await uow.messages.add(message, deliver_to=["ep-3"]) is False
        assert await uow.messages.add(lone) is True
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.messages.add(lone, deliver_to=["ep-1"]) is False
        pending = {
            endpoint: await uow.deliveries.pending_for(endpoint, limit=10) for endpoint in ("ep-1", "ep-2", "ep-3")
        }
    assert [len(found) for found in pending.values()] == [1, 1, 0]
    for (delivery,) in (pending["ep-1"], pending["ep-2"]):
        assert (delivery.event_id, delivery.order_key, delivery.attempts) == ("ev-1", "r-1", 0)
        assert (delivery.next_attempt_at, delivery.body, delivery.organisation_ids) == (NOW, {"id": "ev-1"}, ("org-a",))
