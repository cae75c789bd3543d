"""Disclosure control across two outputs of the same counts (brief §6: withhold consistently across the API, CSV,
dashboard and metrics): the capacity figures publish the area figures' weekly flows and their waiting on as_of again,
beside counts of their own. Protected after the figures, with the figures' decisions settled, a count is withheld in
both or in neither, and nothing withheld in either can be worked out from what both show; checked by linear algebra
written here from what the two outputs show."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waitlists.domain.capacity import Waiter, WeekFlow, capacity_table, service_cells, service_forecast, weeks_ending
from waitlists.domain.clocks import ClockKind, ServiceClocks
from waitlists.domain.disclosure import Cells, Controlled, Level, Node, Table, node_id
from waitlists.service_layer import capacity as capacity_cases

from .test_disclosure import Span

AS_OF = date(2026, 3, 4)
WEEKS = 3  # shown here
HELD = 5  # the figures' weeks of flows here (12 in /v1/metrics), the last ending on as_of; those before WEEKS are
# held here but not shown, as the service layer holds them
FLOWS = 12  # the figures' naming: flow.<i> counts i weeks after the twelfth week back
CLOCKS = ServiceClocks((ClockKind.SERVICE_TARGET,), target_days=20)


def flow(back: int, kind: str) -> str:
    """The figures' name of a week's flow, ``back`` weeks before the one ending on as_of (oldest first there)."""
    return f"flow.{FLOWS - 1 - back}.{kind}"


class Area:
    """One area's truth: per service its weekly flows, the waiting at each week's end, and its forecast; and the
    figures' own table (their waiting split into two bands, and the flows), protected first."""

    def __init__(
        self, services: dict[str, tuple[str, list[WeekFlow], list[Waiter], dict[date, int]]], window: int
    ) -> None:
        self.organisation_of = {s: org for s, (org, _, _, _) in services.items()}
        self.window = window
        per_service = {}
        figures = Table()
        by_org: dict[str, Cells] = {}
        area = Cells()
        for s, (org, flows, queue, days) in sorted(services.items()):
            forecast = service_forecast(s, CLOCKS, queue, AS_OF, days, days, 1, window)
            earlier = [(f.demand, f.throughput) for f in reversed(flows[: HELD - WEEKS])]
            per_service[s] = service_cells(flows[HELD - WEEKS :], forecast, earlier)
            mine = Cells()
            mine.add("waiting", flows[-1].waiting_at_end)
            mine.add("band.short", sum(1 for w in queue if w.waited_days < 28))
            mine.add("band.long", sum(1 for w in queue if w.waited_days >= 28))
            mine.relate("waiting", ("band.short", "band.long"))
            for i, f in enumerate(flows):
                mine.add(flow(HELD - 1 - i, "arrived"), f.demand)
                mine.add(flow(HELD - 1 - i, "started"), f.throughput)
            figures.add(Node(Level.SERVICE, s, org, node_id(Level.ORGANISATION, org)), mine)
            for total in (by_org.setdefault(org, Cells()), area):
                for name, value in mine.published.items():
                    total.published[name] = total.published.get(name, 0) + value
                total.relations = [("waiting", "band.short", "band.long")]
        for org, cells in sorted(by_org.items()):
            figures.add(Node(Level.ORGANISATION, org, org, node_id(Level.AREA, "a")), cells)
        figures.add(Node(Level.AREA, "a", None), area)
        self.figures = figures
        self.capacity = capacity_table("a", per_service, self.organisation_of)


@st.composite
def areas(draw: st.DrawFn) -> Area:
    services = {}
    window = draw(st.sampled_from([2, 4]))  # within the weeks shown, or beyond them
    for o in range(draw(st.integers(1, 3))):
        for s in range(draw(st.integers(1, 2))):
            weeks = weeks_ending(AS_OF, HELD)
            queue = [Waiter(f"r{o}{s}{k}", draw(st.integers(0, 60)), draw(st.sampled_from([None, AS_OF + timedelta(
                days=draw(st.integers(1, 90)))]))) for k in range(draw(st.integers(0, 9)))]  # fmt: skip
            days = {w.end: draw(st.integers(0, 9)) for w in weeks}
            waiting = [draw(st.integers(0, 12)) for _ in range(HELD)] + [len(queue)]
            flows = [WeekFlow(w, days[w.end], days[w.end], waiting[i], waiting[i + 1]) for i, w in enumerate(weeks)]
            services[f"s{o}{s}"] = (f"o{o}", flows, queue, days)
    return Area(services, window)


def equations(area: Area) -> list[list[tuple[str, str]]]:
    """What a reader of both can set up, each as cells summing to zero (+ the first, - the rest): the figures' waiting
    is its two bands; the capacity figures' waiting on as_of is the figures' (forecast.waiting too), each rate's
    count the weeks it covers, a forecast's breaches those with the extra starts plus those avoided, 12 weeks' the
    first 4 and the rest, and those avoided by one more start a week and the rest; services add up to their
    organisation, organisations to the area."""
    found: list[list[tuple[str, str]]] = []
    for node in area.figures.nodes:
        found.append([(node, "waiting"), (node, "band.short"), (node, "band.long")])
    for node in area.capacity.nodes:
        found.append([(node, "forecast.waiting"), (node, "waiting")])
        for rate, kind in (("rate.submitted", "arrived"), ("rate.started", "started")):
            found.append([(node, rate), *((node, flow(back, kind)) for back in range(area.window))])
        for h in (4, 12):
            found.append(
                [(node, f"forecast.base.{h}"), (node, f"forecast.what_if.{h}"), (node, f"forecast.avoided.{h}")]
            )
        for kind in ("base", "what_if"):
            found.append([(node, f"forecast.{kind}.12"), (node, f"forecast.{kind}.4"), (node, f"{kind}.later")])
        found.append([(node, "forecast.base.12"), (node, "forecast.one_more.avoided"), (node, "one_more.left")])
    for table in (area.figures, area.capacity):
        names = {name for cells in table.cells.values() for name in cells.published}
        for parent in table.nodes.values():
            kids = [n.id for n in table.nodes.values() if n.parent == parent.id]
            if kids:
                found += [[(parent.id, name), *((k, name) for k in kids)] for name in sorted(names)]
    return found


def unknowns(area: Area) -> dict[tuple[str, str], int]:
    """Every count a reader could ask after, with its true value (the forecasts' remainders worked out here)."""
    values: dict[tuple[str, str], int] = {}
    for table in (area.figures, area.capacity):
        for node, cells in table.cells.items():
            values |= {(node, name): v for name, v in cells.published.items()}
    for node in area.capacity.nodes:
        v = {name: values[(node, name)] for name in area.capacity.cells[node].published}
        for kind in ("base", "what_if"):
            values[(node, f"{kind}.later")] = v[f"forecast.{kind}.12"] - v[f"forecast.{kind}.4"]
        values[(node, "one_more.left")] = v["forecast.base.12"] - v["forecast.one_more.avoided"]
        values[(node, "forecast.waiting")] = values[(node, "waiting")]
    return values


def shown(area: Area, figures: Controlled, capacity: Controlled) -> set[tuple[str, str]]:
    seen = {(n, name) for n, c in area.figures.cells.items() for name in c.published if not figures.withheld(n, name)}
    seen |= {(n, name) for n, c in area.capacity.cells.items() for name in c.published
             if not capacity.withheld(n, name)}  # fmt: skip
    return seen


def recoverable(area: Area, figures: Controlled, capacity: Controlled, viewer: str | None) -> list[tuple[str, str]]:
    values = unknowns(area)
    known = shown(area, figures.for_viewer(viewer), capacity.for_viewer(viewer))
    for n in area.capacity.cells:  # forecast.waiting is shown as the waiting on as_of is
        if (n, "waiting") in known:
            known.add((n, "forecast.waiting"))
    index = {key: i for i, key in enumerate(k for k in values if k not in known)}
    span = Span.of(equations(area), index)
    withheld = {(n, name) for table in (area.figures, area.capacity) for n, c in table.cells.items()
                for name in c.published} - known  # fmt: skip
    found = []
    for key in index:
        node = area.capacity.nodes.get(key[0]) or area.figures.nodes[key[0]]
        if viewer is not None and node.organisation == viewer:
            continue
        value = values[key]
        if viewer is not None and node.level is Level.AREA:
            value -= values.get((node_id(Level.ORGANISATION, viewer), key[1]), 0)
        if (0 < value < 5 or (viewer is None and key in withheld)) and not span.reduce({index[key]: Fraction(1)}):
            found.append(key)
    return found


def controlled(area: Area) -> tuple[Controlled, Controlled]:
    """The figures protected alone, then the capacity figures with what the figures decided settled, as the service
    layer does it."""
    figures = Controlled.of(area.figures)
    return figures, Controlled.of(area.capacity, capacity_cases._settled_by(figures, area.capacity))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(areas())
def test_a_count_both_publish_is_withheld_in_both_or_neither_and_nothing_withheld_comes_back(area: Area) -> None:
    figures, capacity = controlled(area)
    for node, cells in area.capacity.cells.items():
        for name in cells.published.keys() & area.figures.cells[node].published.keys():
            assert capacity.withheld(node, name) == figures.withheld(node, name), (node, name)
    organisations = sorted(set(area.organisation_of.values()))
    for viewer in (None, *organisations):
        assert recoverable(area, figures, capacity, viewer) == [], (viewer, sorted(capacity.hidden))


def test_a_week_the_figures_withhold_is_withheld_here_though_nothing_here_would_have() -> None:
    """The figures withhold service t's arrivals in the last week (5) so that s's 2 cannot come back from their
    organisation's 7; here s's 2 is withheld anyway, and t's 5 must go too, as there."""
    weeks = weeks_ending(AS_OF, HELD)
    flows = {
        s: [WeekFlow(w, n if i == HELD - 1 else 10, 10, 20, 20) for i, w in enumerate(weeks)]
        for s, n in (("s", 2), ("t", 5))
    }
    queue = [Waiter(f"q{k}", 10, None) for k in range(20)]
    area = Area({s: ("o", f, queue, {}) for s, f in flows.items()} | {"u": ("p", flows["t"], queue, {})}, 2)
    figures, capacity = controlled(area)
    last = flow(0, "arrived")
    assert figures.withheld("service:t", last) and capacity.withheld("service:t", last)
    assert recoverable(area, figures, capacity, None) == []
