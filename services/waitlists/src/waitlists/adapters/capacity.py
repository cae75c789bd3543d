"""Reads of the fact tables for demand, capacity and the breach forecast (``domain.capacity``), grouped in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import Date, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from waitlists.adapters.facts import _days, _valid_on  # one copy of the date rules
from waitlists.adapters.orm import clock_spells, referral_outcomes, waiting_spells
from waitlists.domain.capacity import ServiceActivity, Waiter


async def activity(
    session: AsyncSession, service_ids: Sequence[str], first: date, day: date, boundaries: Sequence[date]
) -> dict[str, ServiceActivity]:
    """Per service: referrals submitted and started by day from ``first`` to ``day``, the children waiting at the
    end of each of ``boundaries`` (none after ``day``), and every referral waiting on ``day`` with its days waited
    and its first running clock's breach date."""
    found = {service_id: ServiceActivity() for service_id in service_ids}
    if not service_ids:
        return found
    ro, ws, cs = referral_outcomes, waiting_spells, clock_spells
    ids = list(service_ids)
    for column, into in ((ro.c.submitted_on, "submitted"), (ro.c.started_on, "started")):
        rows = await session.execute(
            select(ro.c.service_id, column.label("at"), func.count().label("n"))
            .where(ro.c.service_id.in_(ids), column.between(first, day))
            .group_by(ro.c.service_id, column)
        )
        for r in rows:
            getattr(found[r.service_id], into)[r.at] = r.n
    days = [d for d in boundaries if d <= day]
    if days:
        counts = [
            select(ws.c.service_id, literal(d, Date).label("at"), func.count().label("n"))
            .where(ws.c.service_id.in_(ids), _valid_on(ws, d))
            .group_by(ws.c.service_id)
            for d in days
        ]
        for r in await session.execute(union_all(*counts)):
            found[r.service_id].waiting_on[_as_date(r.at)] = r.n
    breach = (
        select(cs.c.referral_id, func.min(cs.c.breach_on).label("breach_on"))
        .where(cs.c.service_id.in_(ids), _valid_on(cs, day))
        .group_by(cs.c.referral_id)
        .subquery()
    )
    waited = case((ws.c.waiting_since.is_(None), ws.c.paused_days), else_=_days(session, day, ws.c.waiting_since))
    rows = await session.execute(
        select(ws.c.service_id, ws.c.referral_id, waited.label("waited"), breach.c.breach_on)
        .select_from(ws.outerjoin(breach, breach.c.referral_id == ws.c.referral_id))
        .where(ws.c.service_id.in_(ids), _valid_on(ws, day))
    )
    for r in rows:
        found[r.service_id].queue.append(Waiter(r.referral_id, int(r.waited), r.breach_on))
    return found


def _as_date(value: object) -> date:
    """A literal date as the driver hands it back (SQLite gives the ISO string)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
