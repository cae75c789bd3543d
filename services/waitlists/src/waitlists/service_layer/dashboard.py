"""Data for the operations dashboard: scopes to choose from, a 12-month trend, and services ranked by risk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waitlists.adapters import timelines as store
from waitlists.adapters.orm import organisations, services
from waitlists.adapters.timelines import Scope
from waitlists.domain.clocks import Clock, ClockState
from waitlists.domain.metrics import Period, clock_figures, clocks_on, live, waiting_figures
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
    async with sessions() as session:
        orgs = (await session.execute(select(organisations).order_by(organisations.c.name))).mappings().all()
        svcs = (await session.execute(select(services).order_by(services.c.name))).mappings().all()
    return ScopeChoices(
        areas=sorted({o["area_id"] for o in orgs}),
        organisations=[(o["organisation_id"], o["name"], o["area_id"]) for o in orgs],
        services=[(s["service_id"], s["name"], s["organisation_id"]) for s in svcs],
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
    async with sessions() as session:
        ids = await store.service_ids(session, scope, scope_id)
        if not ids:
            raise UnknownScope(scope_id)
        timelines = live(await store.timelines_for_services(session, ids))
        clocks = await store.service_clocks(session)
    points = []
    for window in month_windows(day, months):
        for kind, f in sorted(clock_figures(timelines, clocks, window.end, window).items()):
            points.append(
                TrendPoint(window.start, window.end, kind, f.stopped, f.pct_within_target, f.pct_within_target_ex)
            )
    return points


def upcoming_breaches(clocks: list[Clock], day: date, weeks: int = 4) -> list[int]:
    """Running clocks breaching in each of the next ``weeks`` seven-day windows after ``day``."""
    counts = [0] * weeks
    for clock in clocks:
        if clock.state is ClockState.RUNNING and clock.breach_date is not None:
            days_ahead = (clock.breach_date - day).days
            if 1 <= days_ahead <= 7 * weeks:
                counts[(days_ahead - 1) // 7] += 1
    return counts


async def services_by_risk(
    scope: Scope, scope_id: str, day: date, sessions: async_sessionmaker[AsyncSession]
) -> list[ServiceRisk]:
    async with sessions() as session:
        ids = await store.service_ids(session, scope, scope_id)
        if not ids:
            raise UnknownScope(scope_id)
        names = {
            r.service_id: (r.name, r.organisation_id)
            for r in await session.execute(select(services.c.service_id, services.c.name, services.c.organisation_id))
        }
        timelines = live(await store.timelines_for_services(session, ids))
        clocks = await store.service_clocks(session)
    rows = []
    year = Period(day - timedelta(days=364), day)
    for service_id in ids:
        mine = [t for t in timelines if t.service_id == service_id]
        waiting = waiting_figures(mine, clocks, day)
        figures = clock_figures(mine, clocks, day, year)
        service = clocks.get(service_id)
        upcoming = upcoming_breaches([c for t in mine for c in clocks_on(t, service, day)] if service else [], day)
        stopped = sum(f.stopped for f in figures.values())
        met = sum(f.met for f in figures.values())
        rows.append(
            ServiceRisk(
                service_id=service_id,
                name=names.get(service_id, (service_id, ""))[0],
                organisation_id=names.get(service_id, ("", ""))[1],
                waiting=waiting.waiting,
                median_days=waiting.median_days,
                breached_waiting=sum(f.breached_waiting for f in figures.values()),
                imminent=sum(f.imminent for f in figures.values()),
                breaches_next_4_weeks=upcoming,
                pct_within_target=percent(met, stopped),
            )
        )
    return sorted(rows, key=lambda r: r.risk, reverse=True)
