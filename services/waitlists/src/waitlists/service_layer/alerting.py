"""Raises breach alerts when time passes, with no new event: each (referral, clock, kind) once,
published through the outbox in the same transaction that remembers it was raised."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import date

from waitlists.domain.alerts import ClockAlert, due_alerts
from waitlists.domain.metrics import clocks_on
from waitlists.domain.timeline import london_today
from waitlists.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)
_BATCH = 500


async def raise_due_alerts(uow: UnitOfWork, *, today: date, lead_days: int, source: str) -> int:
    """One scan over the clocks due or past due; returns how many alerts were raised."""
    raised = 0
    async with uow:
        due = await uow.facts.due_for_alert(today, lead_days)
        for start in range(0, len(due), _BATCH):
            batch = due[start : start + _BATCH]
            parties = await uow.referrals.parties(batch)
            timelines = await uow.referrals.timelines(batch)
            clocks = await uow.directory.service_clocks({t.service_id for t in timelines})
            for timeline in timelines:
                service = clocks.get(timeline.service_id)
                if service is None or timeline.in_error:
                    continue
                between = parties[timeline.referral_id]
                for due_alert in due_alerts(clocks_on(timeline, service, today), today, lead_days):
                    alert = ClockAlert(due_alert, timeline.service_id, between.receiving_org_id,
                                       between.referrer_org_id, today)  # fmt: skip
                    raised += await uow.alerts.raise_once(alert, source)
        await uow.commit()
    if raised:
        log.info("breach alerts raised", extra={"alerts": raised, "as_of": today.isoformat()})
    return raised


async def run_alert_scheduler(
    uows: UnitOfWorkFactory, stop: asyncio.Event, *, interval: float, lead_days: int, source: str
) -> None:
    while not stop.is_set():
        await raise_due_alerts(uows(), today=london_today(), lead_days=lead_days, source=source)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
