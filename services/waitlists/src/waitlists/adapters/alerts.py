"""Breach alerts raised: each (referral, clock, kind) remembered once, and published through the outbox in
the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from send_shared.db import upsert_insert
from send_shared.events.topics import Topics
from send_shared.outbox import OutboxWriter
from waitlists.adapters.events import alert_event
from waitlists.adapters.orm import alerts_sent, outbox
from waitlists.domain.alerts import ClockAlert


class SqlAlerts:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._writer = OutboxWriter(outbox)

    async def raise_once(self, alert: ClockAlert, source: str) -> bool:
        """Publishes the alert (from ``source``) unless it was raised before; returns whether it was raised now."""
        clock = alert.due.clock
        assert clock.breach_date is not None
        result = await self._session.execute(
            upsert_insert(self._session)(alerts_sent)
            .values(referral_id=clock.referral_id, clock=clock.kind.value, kind=alert.due.kind.value,
                    breach_date=clock.breach_date, sent_at=datetime.now(UTC))
            .on_conflict_do_nothing()
        )  # fmt: skip
        if not cast("CursorResult[Any]", result).rowcount:
            return False
        event = alert_event(alert, source)
        await self._writer.add(self._session, event, topic=Topics.WAITLIST_ALERTS, key=clock.referral_id)
        return True
