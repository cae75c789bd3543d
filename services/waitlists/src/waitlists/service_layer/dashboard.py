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
from waitlists.domain.disclosure import Level, Withheld, node_id
from waitlists.domain.metrics import UPCOMING_WEEKS, Period, Tally, waiting_figures
from waitlists.domain.stats import percent
from waitlists.service_layer.reporting import UnknownScope, area_controls


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
    waiting: int | None
    median_days: int | None
    breached_waiting: int | None
    imminent: int | None
    breaches_next_4_weeks: list[int | None]
    pct_within_target: float | None
    withheld: list[str]
    risk: tuple[int, int, int]  # ranks on the true figures: the order gives nothing a withheld cell hides that
    # the visible ones do not (ties broken by id)


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
    scope: Scope, scope_id: str, day: date, sessions: async_sessionmaker[AsyncSession], *, viewer: str | None = None
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
        controlled, per_service = await area_controls(
            session, scope, scope_id, day, Period(day - timedelta(days=364), day)
        )
    controlled = controlled.for_viewer(viewer)
    rows = []
    for service_id in in_scope:
        tally = per_service[service_id]
        waiting = waiting_figures(tally.waiting_days)
        clocks = tally.clocks.values()
        w = Withheld(controlled, node_id(Level.SERVICE, service_id))
        breached = sum(f.breached_waiting for f in clocks)
        imminent = sum(f.imminent for f in clocks)
        upcoming = [sum(f.upcoming[week] for f in clocks) for week in range(UPCOMING_WEEKS)]
        rows.append(
            ServiceRisk(
                service_id=service_id,
                name=names.get(service_id, (service_id, ""))[0],
                organisation_id=names.get(service_id, ("", ""))[1],
                waiting=w("waiting", "waiting", waiting.waiting),
                median_days=w("median_days", "waiting.median", waiting.median_days),
                breached_waiting=w("breached_waiting", "clocks.breached", breached),
                imminent=w("imminent", "clocks.imminent", imminent),
                breaches_next_4_weeks=[
                    w(f"breaches_next_4_weeks.{week}", f"clocks.upcoming.{week + 1}", n)
                    for week, n in enumerate(upcoming)
                ],
                pct_within_target=w(
                    "pct_within_target",
                    "clocks.pct",
                    percent(sum(f.met for f in clocks), sum(f.stopped for f in clocks)),
                ),
                withheld=w.paths,
                risk=(breached + sum(upcoming), imminent, waiting.waiting),
            )
        )
    return sorted(rows, key=lambda r: (r.risk, r.service_id), reverse=True)
