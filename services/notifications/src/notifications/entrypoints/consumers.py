"""Consumer of referral events and waitlist alerts: queues what concerns someone for delivery."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import pending_notifications
from notifications.domain.audience import organisations_concerned
from send_shared.events.envelope import CloudEvent


async def on_event(event: CloudEvent, session: AsyncSession) -> None:
    organisations = organisations_concerned(event.data)
    if not organisations:
        return
    await session.execute(
        insert(pending_notifications).values(
            event_id=event.id,
            event_type=event.type,
            subject=event.subject,
            organisation_ids=",".join(organisations),
            received_at=datetime.now(UTC),
        )
    )
