"""Reporting use cases: figures for a scope on a date, and one referral's clocks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waitlists.adapters import facts
from waitlists.adapters import timelines as store
from waitlists.adapters.orm import organisations, services
from waitlists.adapters.timelines import Scope
from waitlists.domain.clocks import Clock
from waitlists.domain.disclosure import Controlled, area_table, node_id
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
    return (await controlled_figures(request, sessions))[0]


async def controlled_figures(
    request: FigureRequest, sessions: async_sessionmaker[AsyncSession]
) -> tuple[Figures, Controlled, str]:
    """The scope's figures, with disclosure control over its whole area (the same for every output), and the
    scope's node in it."""
    async with sessions() as session:
        in_scope = await store.scope_services(session, request.scope, request.scope_id)
        if not in_scope:
            raise UnknownScope(request.scope_id)
        controlled, per_service = await area_controls(session, request.scope, request.scope_id, request.as_of,
                                                      request.period)  # fmt: skip
        several = await facts.children_on_several_lists(session, list(in_scope), request.as_of)
    total = Tally(request.as_of, request.period)
    for service_id in in_scope:
        total += per_service[service_id]
    return figures(total, several), controlled, node_id(request.scope, request.scope_id)


async def organisations_of(session: AsyncSession, scope: Scope, scope_id: str) -> tuple[str, dict[str, str]]:
    """The area holding a scope, and each of the area's services with its organisation."""
    if scope is Scope.AREA:
        area_id = scope_id
    else:
        org = select(services.c.organisation_id).where(services.c.service_id == scope_id).scalar_subquery()
        org_id = scope_id if scope is Scope.ORGANISATION else org
        found = (
            await session.execute(select(organisations.c.area_id).where(organisations.c.organisation_id == org_id))
        ).first()
        area_id = found.area_id if found else ""
    rows = await session.execute(
        select(services.c.service_id, services.c.organisation_id).where(
            services.c.organisation_id.in_(
                select(organisations.c.organisation_id).where(organisations.c.area_id == area_id)
            )
        )
    )
    return area_id, {r.service_id: r.organisation_id for r in rows}


async def area_controls(
    session: AsyncSession, scope: Scope, scope_id: str, day: date, period: Period
) -> tuple[Controlled, dict[str, Tally]]:
    """Disclosure control over the area holding the scope, and every service's tally in it."""
    area_id, organisation_of = await organisations_of(session, scope, scope_id)
    in_area = await store.scope_services(session, Scope.AREA, area_id)
    in_scope = await store.scope_services(session, scope, scope_id)  # a service whose organisation is unknown yet
    per_service = await facts.tallies(session, {**in_area, **in_scope}, day, period)
    for service_id in per_service:
        organisation_of.setdefault(service_id, f"unknown-{service_id}")
    blank = Tally(day, period)
    return Controlled.of(area_table(area_id, per_service, organisation_of, blank)), per_service


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
