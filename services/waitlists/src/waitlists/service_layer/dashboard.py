"""Data for the operations dashboard: scopes to choose from, a 12-month trend, and services ranked by risk."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waitlists.adapters import facts
from waitlists.adapters import timelines as store
from waitlists.adapters.orm import organisations, services
from waitlists.adapters.timelines import Scope
from waitlists.domain.disclosure import Controlled, Level, Withheld, node_id, trend_table
from waitlists.domain.metrics import UPCOMING_WEEKS, Period, Tally, waiting_figures
from waitlists.domain.stats import percent
from waitlists.service_layer.reporting import UnknownScope, area_controls, organisations_of


@dataclass(frozen=True)
class ScopeChoices:
    areas: list[str]
    area_names: dict[str, str]  # the name of the area's local authority (directory events name no area)
    organisations: list[tuple[str, str, str]]  # id, name, area
    services: list[tuple[str, str, str]]  # id, name, organisation


@dataclass(frozen=True)
class TrendPoint:
    month_start: date
    month_end: date
    clock: str
    stopped: int | None
    pct_within_target: float | None
    pct_within_target_ex: float | None
    withheld: list[str]  # the fields withheld by disclosure control (each None)


@dataclass(frozen=True)
class ServiceRisk:
    service_id: str
    name: str
    organisation_id: str
    waiting: int | None
    median_days: int | None
    p90_days: int | None
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
        councils = (
            await session.execute(
                select(organisations.c.area_id, organisations.c.name)
                .where(organisations.c.kind == "local_authority")
                .order_by(organisations.c.organisation_id)
            )
        ).all()
    areas = sorted({o.area_id for o in orgs})
    named: dict[str, str] = {}
    for council in councils:
        named.setdefault(council.area_id, council.name)
    return ScopeChoices(
        areas=areas,
        area_names={area: named.get(area, area) for area in areas},
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
    scope: Scope,
    scope_id: str,
    day: date,
    months: int,
    sessions: async_sessionmaker[AsyncSession],
    *,
    viewer: str | None = None,
) -> list[TrendPoint]:
    """Per month and clock the scope's services run: clocks stopped in the month and the share within target, under
    disclosure control over the area's services, organisations and the area, month by month and over the months
    together (``viewer``, an organisation, sees its own services and itself in full)."""
    windows = month_windows(day, months)
    async with sessions() as session:
        in_scope = await store.scope_services(session, scope, scope_id)
        if not in_scope:
            raise UnknownScope(scope_id)
        area_id, organisation_of = await organisations_of(session, scope, scope_id)
        in_area = {**await store.scope_services(session, Scope.AREA, area_id), **in_scope}
        stops = await facts.stops_between(session, list(in_area), windows[0].start, day)
    tallies = {service_id: [Tally(w.end, w) for w in windows] for service_id in in_area}
    for service_id, service in in_area.items():  # a service whose organisation is not known yet stands alone
        organisation_of.setdefault(service_id, scope_id if scope is Scope.ORGANISATION else f"unknown-{service_id}")
        for tally in tallies[service_id]:
            for runs in service.clocks:
                tally.clock(runs.value)
    starts = [w.start for w in windows]
    for service_id, clock, on, outcome, exception, n in stops:
        tallies[service_id][bisect_right(starts, on) - 1].stopped_in_period(clock, outcome, exception, n)
    per_service = {
        service_id: [{k: (f.stopped, f.met, f.stopped_ex, f.met_ex) for k, f in t.clocks.items()} for t in months_of]
        for service_id, months_of in tallies.items()
    }
    controlled = Controlled.of(trend_table(area_id, per_service, organisation_of)).for_viewer(viewer)
    node = node_id(scope, scope_id)
    cells = controlled.table.cells[node]
    kinds = sorted({k.value for service in in_scope.values() for k in service.clocks})
    points = []
    for i, window in enumerate(windows):
        for kind in kinds:
            w = Withheld(controlled, node)
            p = f"month.{i}.clock.{kind}."
            stopped, met = cells.value(p + "stopped"), cells.value(p + "met")
            stopped_ex, met_ex = cells.value(p + "stopped_ex"), cells.value(p + "met_ex")
            points.append(
                TrendPoint(
                    window.start,
                    window.end,
                    kind,
                    stopped=w("stopped", p + "stopped", stopped),
                    pct_within_target=w("pct_within_target", p + "pct", percent(met, stopped)),
                    pct_within_target_ex=w("pct_within_target_ex", p + "pct_ex", percent(met_ex, stopped_ex)),
                    withheld=w.paths,
                )
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
                p90_days=w("p90_days", "waiting.p90", waiting.p90_days),
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
