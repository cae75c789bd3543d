"""Demand, capacity and the breach forecast of a scope's services on a date, under disclosure control (issue #18).

Every output (the JSON routes, the CSV exports, the dashboard) reads one ``CapacityReport``: the figures of every
service in the scope's area, with one ``Controlled`` set over the area (its services, organisations and the area),
so a figure is withheld in all of them or in none, and the caller's own organisation sees its services in full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from waitlists.domain.capacity import (
    HORIZONS,
    RANKING_HORIZON,
    WEEKS_SHOWN,
    WINDOW_WEEKS,
    ServiceForecast,
    WeekFlow,
    boundary_days,
    capacity_table,
    net_change_cell,
    ranking,
    service_cells,
    service_forecast,
    week_cell,
    weekly_flows,
    weeks_ending,
)
from waitlists.domain.disclosure import Controlled, Level, Table, Withheld, node_id
from waitlists.domain.metrics import FLOW_WEEKS
from waitlists.domain.scope import Scope
from waitlists.service_layer.reporting import FigureRequest, UnknownScope, area_controls_over
from waitlists.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class WeekRow:
    week_start: date
    week_end: date
    demand: int | None
    throughput: int | None
    net_change: int | None
    waiting_at_end: int | None
    withheld: list[str]


@dataclass(frozen=True)
class ForecastRow:
    rank: int | None  # 1 = where one more start a week avoids the most breaches; None for a scope's total
    scope: str  # service, organisation or area
    scope_id: str
    name: str
    throughput_per_week: float | None
    demand_per_week: float | None
    target_days: int | None
    waiting: int | None
    breaches: dict[str, int | None]  # by horizon in weeks ("4", "12")
    breaches_with_extra: dict[str, int | None]
    avoided: dict[str, int | None]
    avoided_per_extra_start: float | None
    withheld: list[str]


@dataclass(frozen=True)
class CapacityReport:
    scope: Scope
    scope_id: str
    as_of: date
    window_weeks: int
    extra_starts: int
    suppressed: bool  # the scope's own figures are under disclosure control for the viewer
    weeks: list[WeekRow]  # the scope's total
    service_weeks: dict[str, list[WeekRow]]  # per service in the scope
    total: ForecastRow  # the scope's forecast
    services: list[ForecastRow]  # the scope's services, ranked


@dataclass(frozen=True)
class CapacityRequest:
    scope: Scope
    scope_id: str
    as_of: date
    extra_starts: int = 1
    window_weeks: int = WINDOW_WEEKS
    weeks: int = WEEKS_SHOWN


async def capacity_report(request: CapacityRequest, uow: UnitOfWork, *, viewer: str | None = None) -> CapacityReport:
    day = request.as_of
    # Every week a rate or the published figures' flows cover is held, the ones not shown unpublished.
    held = weeks_ending(day, max(request.weeks, request.window_weeks, FLOW_WEEKS))
    shown, before = held[-request.weeks :], held[: -request.weeks]
    first = held[0].start
    async with uow:
        in_scope = await uow.directory.scope_services(request.scope, request.scope_id)
        if not in_scope:
            raise UnknownScope(request.scope_id)
        area_id, organisation_of = await uow.directory.area_services(request.scope, request.scope_id)
        in_area = {**await uow.directory.scope_services(Scope.AREA, area_id), **in_scope}
        names = {s.service_id: s.name for s in (await uow.directory.services(in_area)).values()}
        read = await uow.facts.activity(sorted(in_area), first, day, boundary_days(shown))
        published, _ = await area_controls_over(uow, area_id, organisation_of, in_area, day, FigureRequest(
            request.scope, request.scope_id, day).period)  # fmt: skip
    flows: dict[str, list[WeekFlow]] = {}
    earlier: dict[str, list[tuple[int, int]]] = {}
    forecasts: dict[str, ServiceForecast] = {}
    for service_id, service in in_area.items():
        seen = read[service_id]
        flows[service_id] = weekly_flows(shown, seen.submitted, seen.started, seen.waiting_on)
        earlier[service_id] = [(f.demand, f.throughput) for f in reversed(weekly_flows(before, seen.submitted,
                                                                                          seen.started, {}))]  # fmt: skip
        forecasts[service_id] = service_forecast(service_id, service, seen.queue, day, seen.submitted, seen.started,
                                                 request.extra_starts, request.window_weeks)  # fmt: skip
        organisation_of.setdefault(
            service_id, request.scope_id if request.scope is Scope.ORGANISATION else f"unknown-{service_id}"
        )
    table = capacity_table(
        area_id, {s: service_cells(flows[s], forecasts[s], earlier[s]) for s in in_area}, organisation_of
    )
    controlled = Controlled.of(table, _settled_by(published, table)).for_viewer(viewer)
    node = node_id(request.scope, request.scope_id)
    ranked = ranking(forecasts[s] for s in in_scope)
    mine = [forecasts[s] for s in in_scope]
    total_flows = _sum_flows([flows[s] for s in in_scope])
    return CapacityReport(
        scope=request.scope,
        scope_id=request.scope_id,
        as_of=day,
        window_weeks=request.window_weeks,
        extra_starts=request.extra_starts,
        suppressed=not controlled.full(node),
        weeks=_week_rows(controlled, node, total_flows),
        service_weeks={s: _week_rows(controlled, node_id(Level.SERVICE, s), flows[s]) for s in sorted(in_scope)},
        total=_forecast_row(controlled, node, None, request.scope.value, request.scope_id, request.scope_id, mine),
        services=_ranked_as_shown([_service_row(controlled, f, names) for f in ranked]),
    )


def _settled_by(figures: Controlled, table: Table) -> dict[tuple[str, str], bool]:
    """The cells of ``table`` the published figures (the area's, on the same day, for their default period) hold
    too, with whether they withhold them: their flows and their waiting on as_of, shown or withheld here as there."""
    theirs = figures.table.published()
    return {key: key in figures.hidden for key in table.values().keys() & theirs}


def _service_row(controlled: Controlled, f: ServiceForecast, names: dict[str, str]) -> ForecastRow:
    node = node_id(Level.SERVICE, f.service_id)
    return _forecast_row(controlled, node, None, Level.SERVICE.value, f.service_id, names.get(f.service_id, f.service_id),
                         [f])  # fmt: skip


RANKED_BY = ("avoided_per_extra_start", f"breaches.{RANKING_HORIZON}")


def _ranked_as_shown(rows: list[ForecastRow]) -> list[ForecastRow]:
    """The rows in ranking order, numbered, where the viewer sees the figures they are ranked by; a row with one of
    them withheld comes after, unnumbered, in id order: its place among the others would tell of the withheld
    figure."""
    shown = [r for r in rows if not set(RANKED_BY) & set(r.withheld)]
    hidden = sorted((r for r in rows if set(RANKED_BY) & set(r.withheld)), key=lambda r: r.scope_id)
    return [replace(r, rank=i) for i, r in enumerate(shown, start=1)] + hidden


def _sum_flows(per_service: list[list[WeekFlow]]) -> list[WeekFlow]:
    if not per_service:
        return []
    return [
        WeekFlow(
            parts[0].week,
            sum(p.demand for p in parts),
            sum(p.throughput for p in parts),
            sum(p.waiting_at_start for p in parts),
            sum(p.waiting_at_end for p in parts),
        )
        for parts in zip(*per_service, strict=True)
    ]


def _week_rows(controlled: Controlled, node: str, flows: list[WeekFlow]) -> list[WeekRow]:
    rows = []
    for i, f in enumerate(flows):
        w = Withheld(controlled, node)
        back = len(flows) - 1 - i
        rows.append(
            WeekRow(
                f.week.start,
                f.week.end,
                demand=w("demand", week_cell(back, "demand"), f.demand),
                throughput=w("throughput", week_cell(back, "throughput"), f.throughput),
                net_change=w("net_change", net_change_cell(back), f.net_change),
                waiting_at_end=w("waiting_at_end", week_cell(back, "waiting_end"), f.waiting_at_end),
                withheld=w.paths,
            )
        )
    return rows


def _forecast_row(
    controlled: Controlled,
    node: str,
    rank: int | None,
    scope: str,
    scope_id: str,
    name: str,
    parts: list[ServiceForecast],
) -> ForecastRow:
    """A service's forecast, or a scope's (the sums of its services' figures; rates summed too)."""
    w = Withheld(controlled, node)

    def by_horizon(path: str, measure: str, count: Callable[[ServiceForecast, int], int]) -> dict[str, int | None]:
        return {str(h): w(f"{path}.{h}", f"forecast.{measure}.{h}", sum(count(f, h) for f in parts)) for h in HORIZONS}

    one_more = sum(f.avoided_by_one_more for f in parts)
    return ForecastRow(
        rank=rank,
        scope=scope,
        scope_id=scope_id,
        name=name,
        throughput_per_week=w("throughput_per_week", "rate.throughput", round(sum(f.throughput for f in parts), 3)),
        demand_per_week=w("demand_per_week", "rate.demand", round(sum(f.demand for f in parts), 3)),
        target_days=parts[0].target_days if len(parts) == 1 else None,
        waiting=w("waiting", "forecast.waiting", sum(f.waiting for f in parts)),
        breaches=by_horizon("breaches", "base", lambda f, h: f.base.within(h)),
        breaches_with_extra=by_horizon("breaches_with_extra", "what_if", lambda f, h: f.what_if.within(h)),
        avoided=by_horizon("avoided", "avoided", lambda f, h: f.avoided(h)),
        avoided_per_extra_start=w(
            "avoided_per_extra_start",
            "forecast.one_more.per_start",
            round(one_more / (RANKING_HORIZON * len(parts)), 3) if parts else None,
        ),
        withheld=w.paths,
    )
