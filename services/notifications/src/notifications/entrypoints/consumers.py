"""Consumer of referral events and waitlist alerts: queues what concerns someone for delivery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from notifications.service_layer.fanout import fan_out
from send_shared.events.envelope import CloudEvent

Handler = Callable[[CloudEvent, AsyncSession], Awaitable[None]]


def event_handler(*, referral_link_template: str, after: Callable[[], None] | None = None) -> Handler:
    """The consumer's handler; ``after`` is told when deliveries were queued (it wakes the dispatcher)."""

    async def on_event(event: CloudEvent, session: AsyncSession) -> None:
        if await fan_out(event, session, referral_link_template=referral_link_template) and after is not None:
            after()

    return on_event
