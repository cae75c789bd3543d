"""Raises breach alerts when time passes, with no new event: each (referral, clock, kind) once,
published through the outbox in the same transaction that remembers it was raised."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from send_shared.db import upsert_insert
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import CLOCK_BREACH_IMMINENT, CLOCK_BREACHED, ClockAlertV1
from send_shared.events.topics import Topics
from send_shared.outbox import OutboxWriter
from waitlists.adapters import facts
from waitlists.adapters import timelines as store
from waitlists.adapters.orm import alerts_sent, outbox, referrals
from waitlists.domain.alerts import AlertKind, DueAlert, due_alerts
from waitlists.domain.metrics import clocks_on
from waitlists.domain.timeline import LONDON

log = logging.getLogger(__name__)
_TYPES = {AlertKind.IMMINENT: CLOCK_BREACH_IMMINENT, AlertKind.BREACHED: CLOCK_BREACHED}


async def raise_due_alerts(
    sessions: async_sessionmaker[AsyncSession], *, today: date, lead_days: int, source: str
) -> int:
    """One scan over the clocks due or past due; returns how many alerts were raised."""
    writer = OutboxWriter(outbox)
    raised = 0
    async with sessions() as session, session.begin():
        due = await facts.due_for_alert(session, today, lead_days)
        for start in range(0, len(due), 500):
            batch = due[start : start + 500]
            rows = await session.execute(
                select(referrals.c.referral_id, referrals.c.receiving_org_id, referrals.c.referrer_org_id).where(
                    referrals.c.referral_id.in_(batch)
                )
            )
            parties = {r.referral_id: (r.receiving_org_id, r.referrer_org_id) for r in rows}
            timelines = await store.timelines_for_referrals(session, batch)
            clocks = await store.service_clocks(session, {t.service_id for t in timelines})
            for timeline in timelines:
                service = clocks.get(timeline.service_id)
                if service is None or timeline.in_error:
                    continue
                for alert in due_alerts(clocks_on(timeline, service, today), today, lead_days):
                    receiving, referrer = parties[timeline.referral_id]
                    if await _remember(session, alert):
                        event = _event(alert, timeline.service_id, receiving, referrer, today, source)
                        await writer.add(session, event, topic=Topics.WAITLIST_ALERTS, key=timeline.referral_id)
                        raised += 1
    if raised:
        log.info("breach alerts raised", extra={"alerts": raised, "as_of": today.isoformat()})
    return raised


async def _remember(session: AsyncSession, alert: DueAlert) -> bool:
    insert = upsert_insert(session)
    assert alert.clock.breach_date is not None
    result = await session.execute(
        insert(alerts_sent)
        .values(
            referral_id=alert.clock.referral_id,
            clock=alert.clock.kind.value,
            kind=alert.kind.value,
            breach_date=alert.clock.breach_date,
            sent_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )
    return bool(cast("CursorResult[Any]", result).rowcount)


def _event(alert: DueAlert, service_id: str, receiving: str, referrer: str, today: date, source: str) -> CloudEvent:
    clock = alert.clock
    assert clock.breach_date is not None
    data = ClockAlertV1(
        referral_id=clock.referral_id,
        clock=clock.kind.value,
        service_id=service_id,
        receiving_org_id=receiving,
        referrer_org_id=referrer,
        target_days=clock.target,
        start_date=clock.start,
        breach_date=clock.breach_date,
        waiting_days=clock.waiting_days,
        raised_on=today,
    )
    return CloudEvent(
        type=_TYPES[alert.kind], source=source, subject=clock.referral_id, data=data.model_dump(mode="json")
    )


def london_today() -> date:
    return datetime.now(LONDON).date()


async def run_alert_scheduler(
    sessions: async_sessionmaker[AsyncSession], stop: asyncio.Event, *, interval: float, lead_days: int, source: str
) -> None:
    while not stop.is_set():
        await raise_due_alerts(sessions, today=london_today(), lead_days=lead_days, source=source)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
