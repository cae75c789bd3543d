"""Data for the operations dashboard: scopes to choose from, a 12-month trend, and services ranked by risk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waitlists.adapters import facts
from waitlists.adapters import timelines as store
from waitlists.adapters.orm import organisations, services
from waitlists.adapters.timelines import Scope
from waitlists.domain.metrics import UPCOMING_WEEKS, Period, Tally, waiting_figures
from waitlists.domain.stats import percent
from waitlists.service_layer.reporting import UnknownScope


@dataclass(frozen=True)
class ScopeChoices:
    areas: list[str]
    organisations: list[tuple[str, str, str]]  # id, name, area
    services: list[tuple[str, str, str]]  # id, name, organisation


@dataclass(frozen=True)
class TrendPoint:
    month_start: date
    month_end: date
    clock: str
    stopped: int
    pct_within_target: float | None
    pct_within_target_ex: float | None


@dataclass(frozen=True)
class ServiceRisk:
    service_id: str
    name: str
    organisation_id: str
    waiting: int
    median_days: int | None
    breached_waiting: int
    imminent: int
    breaches_next_4_weeks: list[int]
    pct_within_target: float | None

    @property
    def risk(self) -> tuple[int, int, int]:
        return (self.breached_waiting + sum(self.breaches_next_4_weeks), self.imminent, self.waiting)


async def scope_choices(sessions: async_sessionmaker[AsyncSession]) -> ScopeChoices:
    """The organisations that run services, their areas, and the services. Schools refer but receive
    nothing: listing the country's schools would make the filter useless and the page slow."""
    async with sessions() as session:
        orgs = (
            await session.execute(
                select(organisations.c.organisation_id, organisations.c.name, organisations.c.area_id)
                .where(organisations.c.organisation_id.in_(select(services.c.organisation_id)))
                .order_by(organisations.c.name)
            )
        ).all()
        svcs = (
            await session.execute(
                select(services.c.service_id, services.c.name, services.c.organisation_id).order_by(services.c.name)
            )
        ).all()
    return ScopeChoices(
        areas=sorted({o.area_id for o in orgs}),
        organisations=[(o.organisation_id, o.name, o.area_id) for o in orgs],
        services=[(s.service_id, s.name, s.organisation_id) for s in svcs],
    )


def month_windows(day: date, months: int) -> list[Period]:
    """The ``months`` calendar months up to the one holding ``day`` (the last one ends on ``day``)."""
    windows = []
    start = day.replace(day=1)
    end = day
    for _ in range(months):
        windows.append(Period(start, end))
        end = start - timedelta(days=1)
        start = end.replace(day=1)
    return list(reversed(windows))


async def trend(
    scope: Scope, scope_id: str, day: date, months: int, sessions: async_sessionmaker[AsyncSession]
) -> list[TrendPoint]:
    """Per month and clock the scope's services run: clocks stopped in the month and the share within target."""
    windows = month_windows(day, months)
    async with sessions() as session:
        in_scope = await store.scope_services(session, scope, scope_id)
        if not in_scope:
            raise UnknownScope(scope_id)
        stops = await facts.stops_between(session, list(in_scope), windows[0].start, day)
    kinds = sorted({kind.value for service in in_scope.values() for kind in service.clocks})
    points = []
    for window in windows:
        tally = Tally(window.end, window)
        for kind in kinds:
            tally.clock(kind)
        for kind, on, outcome, exception, n in stops:
            if on in window:
                tally.stopped_in_period(kind, outcome, exception, n)
        for kind, f in sorted(tally.clocks.items()):
            points.append(
                TrendPoint(window.start, window.end, kind, f.stopped, f.pct_within_target, f.pct_within_target_ex)
            )
    return points


async def services_by_risk(
    scope: Scope, scope_id: str, day: date, sessions: async_sessionmaker[AsyncSession]
) -> list[ServiceRisk]:
    async with sessions() as session:
        in_scope = await store.scope_services(session, scope, scope_id)
        if not in_scope:
            raise UnknownScope(scope_id)
        names = {
            r.service_id: (r.name, r.organisation_id)
            for r in await session.execute(
                select(services.c.service_id, services.c.name, services.c.organisation_id).where(
                    services.c.service_id.in_(in_scope)
                )
            )
        }
        per_service = await facts.tallies(session, in_scope, day, Period(day - timedelta(days=364), day))
    rows = []
    for service_id, tally in per_service.items():
        waiting = waiting_figures(tally.waiting_days)
        clocks = tally.clocks.values()
        rows.append(
            ServiceRisk(
                service_id=service_id,
                name=names.get(service_id, (service_id, ""))[0],
                organisation_id=names.get(service_id, ("", ""))[1],
                waiting=waiting.waiting,
                median_days=waiting.median_days,
                breached_waiting=sum(f.breached_waiting for f in clocks),
                imminent=sum(f.imminent for f in clocks),
                breaches_next_4_weeks=[sum(f.upcoming[week] for f in clocks) for week in range(UPCOMING_WEEKS)],
                pct_within_target=percent(sum(f.met for f in clocks), sum(f.stopped for f in clocks)),
            )
        )
    return sorted(rows, key=lambda r: r.risk, reverse=True)
