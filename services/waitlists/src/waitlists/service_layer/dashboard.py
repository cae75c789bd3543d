"""Data for the operations dashboard: scopes to choose from, a 12-month trend, and services ranked by risk."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, timedelta

from waitlists.domain.directory import OrganisationEntry, ServiceEntry
from waitlists.domain.disclosure import Controlled, Level, Withheld, node_id, trend_table
from waitlists.domain.metrics import UPCOMING_WEEKS, Period, Tally, waiting_figures
from waitlists.domain.scope import Scope
from waitlists.domain.stats import percent
from waitlists.service_layer.reporting import UnknownScope, area_controls
from waitlists.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class ScopeChoices:
    areas: list[str]
    area_names: dict[str, str]  # the name of the area's local authority (directory events name no area)
    organisations: list[OrganisationEntry]  # in name order
    services: list[ServiceEntry]  # in name order


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


async def scope_choices(uow: UnitOfWork) -> ScopeChoices:
    """The organisations that run services, their areas, and the services. Schools refer but receive
    nothing: listing the country's schools would make the filter useless and the page slow."""
    async with uow:
        orgs = await uow.directory.providers()
        svcs = await uow.directory.services()
        councils = await uow.directory.local_authorities()
    areas = sorted({o.area_id for o in orgs})
    named: dict[str, str] = {}
    for council in councils:
        named.setdefault(council.area_id, council.name)
    return ScopeChoices(
        areas=areas,
        area_names={area: named.get(area, area) for area in areas},
        organisations=orgs,
        services=list(svcs.values()),
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
    uow: UnitOfWork,
    *,
    viewer: str | None = None,
) -> list[TrendPoint]:
    """Per month and clock the scope's services run: clocks stopped in the month and the share within target, under
    disclosure control over the area's services, organisations and the area, month by month and over the months
    together (``viewer``, an organisation, sees its own services and itself in full)."""
    windows = month_windows(day, months)
    async with uow:
        in_scope = await uow.directory.scope_services(scope, scope_id)
        if not in_scope:
            raise UnknownScope(scope_id)
        area_id, organisation_of = await uow.directory.area_services(scope, scope_id)
        in_area = {**await uow.directory.scope_services(Scope.AREA, area_id), **in_scope}
        stops = await uow.facts.stops_between(list(in_area), windows[0].start, day)
    tallies = {service_id: [Tally(w.end, w) for w in windows] for service_id in in_area}
    for service_id, service in in_area.items():  # a service whose organisation is not known yet stands alone
        organisation_of.setdefault(service_id, scope_id if scope is Scope.ORGANISATION else f"unknown-{service_id}")
        for tally in tallies[service_id]:
            for runs in service.clocks:
                tally.clock(runs.value)
    starts = [w.start for w in windows]
    for stop in stops:
        tallies[stop.service_id][bisect_right(starts, stop.stopped_on) - 1].stopped_in_period(
            stop.clock.value, stop.outcome, stop.exception, stop.n
        )
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
    scope: Scope, scope_id: str, day: date, uow: UnitOfWork, *, viewer: str | None = None
) -> list[ServiceRisk]:
    async with uow:
        in_scope = await uow.directory.scope_services(scope, scope_id)
        if not in_scope:
            raise UnknownScope(scope_id)
        names = {s.service_id: (s.name, s.organisation_id) for s in (await uow.directory.services(in_scope)).values()}
        controlled, per_service = await area_controls(uow, scope, scope_id, day, Period(day - timedelta(days=364), day))
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


async def signin_organisations(uow: UnitOfWork) -> list[tuple[str, str]]:
    """Who may sign in to the dashboard in development: the organisations that run services and the local
    authorities, as (id, name)."""
    async with uow:
        found = [*await uow.directory.providers(), *await uow.directory.local_authorities()]
    return sorted({(o.organisation_id, o.name) for o in found}, key=lambda o: o[1])
