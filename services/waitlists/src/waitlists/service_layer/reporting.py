"""Reporting use cases: figures for a scope on a date, and one referral's clocks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waitlists.adapters import facts
from waitlists.adapters import timelines as store
from waitlists.adapters.timelines import Scope
from waitlists.domain.clocks import Clock
from waitlists.domain.metrics import Figures, Period, Tally, clocks_on, figures


class UnknownScope(Exception):
    """No service, organisation or area of that id is known (yet) from the directory events."""


@dataclass(frozen=True)
class FigureRequest:
    scope: Scope
    scope_id: str
    as_of: date
    period_start: date | None = None

    @property
    def period(self) -> Period:
        start = self.period_start or self.as_of - timedelta(days=364)
        return Period(start, self.as_of)


async def figures_for(request: FigureRequest, sessions: async_sessionmaker[AsyncSession]) -> Figures:
    async with sessions() as session:
        in_scope = await store.scope_services(session, request.scope, request.scope_id)
        if not in_scope:
            raise UnknownScope(request.scope_id)
        per_service = await facts.tallies(session, in_scope, request.as_of, request.period)
        several = await facts.children_on_several_lists(session, list(in_scope), request.as_of)
    total = Tally(request.as_of, request.period)
    for tally in per_service.values():
        total += tally
    return figures(total, several)


async def referral_clocks(
    referral_id: str, as_of: date, sessions: async_sessionmaker[AsyncSession], *, viewer: str
) -> list[Clock] | None:
    """The referral's clocks on ``as_of``; None when there is no such referral, or ``viewer`` (an
    organisation id) is neither its referrer nor its receiver."""
    async with sessions() as session:
        parties = await store.parties(session, referral_id)
        if parties is None or not parties.include(viewer):
            return None
        timeline = await store.timeline(session, referral_id)
        if timeline is None or timeline.in_error:
            return None
        clocks = await store.service_clocks(session, [timeline.service_id])
    service = clocks.get(timeline.service_id)
    return clocks_on(timeline, service, as_of) if service else []
