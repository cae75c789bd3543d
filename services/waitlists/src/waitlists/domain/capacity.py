"""Demand, capacity and the breach forecast of a service (issue #18). Pure Python, business dates (Europe/London).

**Weeks.** Seven-day weeks ending on ``as_of``, ``as_of`` less 7 days, and so on: the weeks of the published
figures' flows (``domain.metrics``), so demand and throughput here are those figures' referrals in and started, and
the two never differ by part of a week (a count the difference of two published ones could give back). Nothing after
``as_of`` is counted. Per week: *demand* (referrals submitted in it), *throughput* (referrals whose support started,
their first ``in_progress``, in it) and the *net change* in the list: children waiting at the end of its last day
less those waiting at the end of the day before it.

**Rates.** Throughput is the mean starts a week over the ``window_weeks`` (default 8) seven-day windows ending on
``as_of``; demand is the mean referrals in a week over the same days.

**The queue model** (deterministic, week by week, for ``horizon`` weeks after ``as_of``; week k holds the days
``as_of + 7(k-1) + 1`` to ``as_of + 7k``):

- The queue on ``as_of``: every referral waiting then, with its breach date, the earliest breach date of its
  clocks running on ``as_of`` (None when none runs: a clock paused before its breach date cannot breach). A
  referral already past its breach date has breached before the forecast: it takes its place in the queue but is
  no forecast breach.
- Order: longest-waiting first (most days waited on ``as_of``, then the referral id), new arrivals behind them in
  the order they arrive. Services start children in waiting order, not by breach date.
- Starts: by the end of week k the service has started ``floor(k * throughput)`` children in all, so a fractional
  rate is neither rounded up nor lost. Week k's starts happen on its first day; starts a week with nobody left
  to start would have had are not carried forward.
- Arrivals: by week k ``floor(k * demand)`` new referrals in all, each arriving on the first day of its week with a
  breach date of that day + the service's shortest target + 1 (the clocks' rule: breached from the first day over
  the target). A service with no target has arrivals that never breach.
- A child breaches when its breach date comes before it is started: started on day s, it breaches if its breach
  date is on or before s (started on its breach date it has waited one day over); never started within the
  horizon, if its breach date falls within it. A breach counts in the week holding its breach date.

**What if.** The same model with ``throughput + extra`` starts a week: breaches avoided = breaches at current
throughput less breaches with the extra starts. **Ranking**: breaches avoided in 12 weeks by one more start a week
(12 more starts), per extra start, highest first: where one more clinician would help most.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from waitlists.domain.clocks import ServiceClocks, target_days
from waitlists.domain.disclosure import Cells, Level, Node, Table, node_id
from waitlists.domain.metrics import FLOW_WEEKS
from waitlists.domain.timeline import add_days

WINDOW_WEEKS = 8  # the recent weeks the throughput and demand rates are means over
WEEKS_SHOWN = FLOW_WEEKS  # weeks of demand and throughput, the one ending on as_of last
HORIZONS = (4, 12)
RANKING_HORIZON = 12
_EPSILON = 1e-9  # floor(k * rate) of a rate like 0.1 * 3 that floating point leaves at 2.9999...


@dataclass(frozen=True, slots=True)
class Week:
    start: date
    end: date  # six days after its start: as_of, or a multiple of seven days before it


def weeks_ending(as_of: date, weeks: int) -> list[Week]:
    """The ``weeks`` seven-day weeks ending on ``as_of`` and before it, oldest first."""
    ends = [as_of - timedelta(days=7 * back) for back in range(weeks - 1, -1, -1)]
    return [Week(end - timedelta(days=6), end) for end in ends]


@dataclass(frozen=True, slots=True)
class WeekFlow:
    week: Week
    demand: int
    throughput: int
    waiting_at_start: int  # waiting at the end of the day before the week
    waiting_at_end: int  # waiting at the end of the week's last day

    @property
    def net_change(self) -> int:
        return self.waiting_at_end - self.waiting_at_start


def weekly_flows(
    weeks: Sequence[Week], submitted: Mapping[date, int], started: Mapping[date, int], waiting_on: Mapping[date, int]
) -> list[WeekFlow]:
    """Each week's flows, from referrals submitted and started by day and the children waiting at the end of each
    day the weeks need (the day before each week and each week's last day)."""

    def between(counts: Mapping[date, int], week: Week) -> int:
        return sum(n for day, n in counts.items() if week.start <= day <= week.end)

    return [
        WeekFlow(
            w,
            between(submitted, w),
            between(started, w),
            waiting_on.get(w.start - timedelta(days=1), 0),
            waiting_on.get(w.end, 0),
        )
        for w in weeks
    ]


def boundary_days(weeks: Sequence[Week]) -> list[date]:
    """The days whose end-of-day waiting counts ``weekly_flows`` needs."""
    return sorted({w.start - timedelta(days=1) for w in weeks} | {w.end for w in weeks})


def mean_per_week(days: Mapping[date, int], as_of: date, window_weeks: int = WINDOW_WEEKS) -> float:
    """Mean a week over the ``window_weeks`` seven-day windows ending on ``as_of``."""
    first = as_of - timedelta(days=7 * window_weeks - 1)
    return sum(n for day, n in days.items() if first <= day <= as_of) / window_weeks


def shortest_target(service: ServiceClocks, urgency: str = "routine") -> int | None:
    """The target of the service's first clock to breach, for a routine referral; None when no clock has one."""
    targets = [t for kind in service.clocks if (t := target_days(kind, urgency, service.target_days)) is not None]
    return min(targets, default=None)


@dataclass(frozen=True, slots=True)
class Waiter:
    """A referral waiting on as_of: days waited then, and its first breach date (None: cannot breach now)."""

    referral_id: str
    waited_days: int
    breach_on: date | None


@dataclass(frozen=True, slots=True)
class Forecast:
    horizon_weeks: int
    breaches_by_week: tuple[int, ...]  # week 1 first

    def within(self, weeks: int) -> int:
        return sum(self.breaches_by_week[:weeks])


def forecast(
    queue: Iterable[Waiter],
    as_of: date,
    throughput: float,
    demand: float,
    target: int | None,
    horizon_weeks: int = max(HORIZONS),
) -> Forecast:
    """Breaches a week for ``horizon_weeks`` weeks after ``as_of`` by the queue model (module docstring)."""
    order = sorted(queue, key=lambda w: (-w.waited_days, w.referral_id))
    breach: list[date | None] = [w.breach_on for w in order]
    start_day: list[date | None] = [None] * len(order)
    horizon_end = add_days(as_of, 7 * horizon_weeks)
    front = 0
    for k in range(1, horizon_weeks + 1):
        first_day = add_days(as_of, 7 * (k - 1) + 1)
        arrivals = _cumulative(k, demand) - _cumulative(k - 1, demand)
        for _ in range(arrivals):
            breach.append(None if target is None else add_days(first_day, target + 1))
            start_day.append(None)
        starts = _cumulative(k, throughput) - _cumulative(k - 1, throughput)
        for _ in range(starts):
            if front >= len(breach):
                break
            start_day[front] = first_day
            front += 1
    by_week = [0] * horizon_weeks
    for due, started in zip(breach, start_day, strict=True):
        if due is None or due <= as_of or due > horizon_end:
            continue  # cannot breach, breached already, or not within the horizon
        if started is None or due <= started:
            by_week[((due - as_of).days - 1) // 7] += 1
    return Forecast(horizon_weeks, tuple(by_week))


def _cumulative(weeks: int, rate: float) -> int:
    return math.floor(weeks * rate + _EPSILON) if rate > 0 else 0


@dataclass(frozen=True, slots=True)
class ServiceForecast:
    service_id: str
    throughput: float
    demand: float
    target_days: int | None
    waiting: int
    base: Forecast
    what_if: Forecast  # with the extra starts asked for
    one_more: Forecast  # with one more start a week (the ranking)
    extra_starts: int
    started_in_window: int  # the counts the rates are means of
    submitted_in_window: int
    window_weeks: int  # the seven-day weeks ending on as_of they are counted over

    def avoided(self, weeks: int) -> int:
        return self.base.within(weeks) - self.what_if.within(weeks)

    @property
    def avoided_by_one_more(self) -> int:
        return self.base.within(RANKING_HORIZON) - self.one_more.within(RANKING_HORIZON)

    @property
    def avoided_per_extra_start(self) -> float:
        """Breaches avoided in 12 weeks per start added by one more start a week (12 more starts)."""
        return self.avoided_by_one_more / RANKING_HORIZON


def service_forecast(
    service_id: str,
    service: ServiceClocks,
    queue: Sequence[Waiter],
    as_of: date,
    submitted: Mapping[date, int],
    started: Mapping[date, int],
    extra_starts: int,
    window_weeks: int = WINDOW_WEEKS,
) -> ServiceForecast:
    throughput = mean_per_week(started, as_of, window_weeks)
    demand = mean_per_week(submitted, as_of, window_weeks)
    target = shortest_target(service)

    def run(extra: int) -> Forecast:
        return forecast(queue, as_of, throughput + extra, demand, target)

    return ServiceForecast(service_id, throughput, demand, target, len(queue), run(0), run(extra_starts), run(1),
                           extra_starts, round(throughput * window_weeks), round(demand * window_weeks),
                           window_weeks)  # fmt: skip


def ranking(found: Iterable[ServiceForecast]) -> list[ServiceForecast]:
    """Highest breaches avoided per extra start first; ties by more breaches forecast, then id."""
    return sorted(found, key=lambda f: (-f.avoided_by_one_more, -f.base.within(RANKING_HORIZON), f.service_id))


# Disclosure control ---------------------------------------------------------------------------------------------


def week_cell(back: int, measure: str) -> str:
    """The cell of a week's demand (``demand``), throughput (``throughput``) or children waiting at its end
    (``waiting_end``), the week ending ``back`` weeks before as_of: the published figures' own cell where they
    publish the same count (their flows of the last ``FLOW_WEEKS`` weeks, their children waiting on as_of), so one
    count is one cell, withheld in both or in neither."""
    if measure == "waiting_end":
        return "waiting" if back == 0 else f"week.{back}.waiting_end"
    if back < FLOW_WEEKS:
        return f"flow.{FLOW_WEEKS - 1 - back}.{'arrived' if measure == 'demand' else 'started'}"
    return f"week.{back}.{measure}"


def net_change_cell(back: int) -> str:
    return f"week.{back}.net_change"


def flow_cells(flows: Sequence[WeekFlow], c: Cells | None = None) -> Cells:
    """Cells of the weekly flows (``week_cell``): demand, throughput and the waiting at each week's end, and the
    waiting at the start of the first week; net change derived from the waiting counts at both ends."""
    c = Cells() if c is None else c
    if not flows:
        return c
    c.add("week.start.waiting", flows[0].waiting_at_start)
    for i, f in enumerate(flows):
        back = len(flows) - 1 - i
        c.add(week_cell(back, "demand"), f.demand)
        c.add(week_cell(back, "throughput"), f.throughput)
        c.add(week_cell(back, "waiting_end"), f.waiting_at_end)
        before = "week.start.waiting" if i == 0 else week_cell(back + 1, "waiting_end")
        c.derived[net_change_cell(back)] = (before, week_cell(back, "waiting_end"))
    return c


def forecast_cells(
    f: ServiceForecast, c: Cells | None = None, *, weeks_held: int = 0, waiting_held: bool = False
) -> Cells:
    """Cells of a forecast: breaches within each horizon, with the extra starts and avoided (their difference), and
    the avoided by one more start a week, whose per-start figure derives from it. ``weeks_held``: how many weeks of
    demand and throughput ``c`` holds already, ending on as_of: the rates' counts are the sums of the weeks they
    cover, when it holds them all; ``waiting_held``: ``forecast.waiting`` is another name of the waiting on as_of."""
    c = Cells() if c is None else c
    if waiting_held:
        c.aliases["forecast.waiting"] = week_cell(0, "waiting_end")
    else:
        c.add("forecast.waiting", f.waiting)
    for h in HORIZONS:
        c.add(f"forecast.base.{h}", f.base.within(h))
        c.add(f"forecast.what_if.{h}", f.what_if.within(h))
        c.add(f"forecast.avoided.{h}", f.avoided(h))
        c.relate(f"forecast.base.{h}", (f"forecast.what_if.{h}", f"forecast.avoided.{h}"))
    first, last = HORIZONS[0], HORIZONS[-1]
    c.complement(f"forecast.base.{last}", f"forecast.base.{first}", "forecast.base.later")
    c.complement(f"forecast.what_if.{last}", f"forecast.what_if.{first}", "forecast.what_if.later")
    c.add("rate.started", f.started_in_window)  # published as a mean a week, which gives the count back
    c.add("rate.submitted", f.submitted_in_window)
    if 0 < f.window_weeks <= weeks_held:
        c.relate("rate.started", (week_cell(back, "throughput") for back in range(f.window_weeks)))
        c.relate("rate.submitted", (week_cell(back, "demand") for back in range(f.window_weeks)))
    c.derived |= {"rate.throughput": ("rate.started",), "rate.demand": ("rate.submitted",)}
    c.add("forecast.one_more.avoided", f.avoided_by_one_more)
    c.complement(f"forecast.base.{RANKING_HORIZON}", "forecast.one_more.avoided", "forecast.one_more.left")
    c.derived["forecast.one_more.per_start"] = ("forecast.one_more.avoided",)
    return c


def service_cells(flows: Sequence[WeekFlow], f: ServiceForecast, earlier: Sequence[tuple[int, int]] = ()) -> Cells:
    """One service's cells: its weekly flows and its forecast, the waiting on as_of counted once. ``earlier``: the
    demand and throughput of the weeks before those shown (the one before them first), held but not published, so
    that a rate over more weeks than are shown, or a week the published figures show and withhold, is still related
    to what it counts."""
    c = flow_cells(flows)
    for i, (demand, throughput) in enumerate(earlier):
        back = len(flows) + i
        c.add(week_cell(back, "demand"), demand, publish=False)
        c.add(week_cell(back, "throughput"), throughput, publish=False)
    return forecast_cells(f, c, weeks_held=len(flows) + len(earlier), waiting_held=bool(flows))


def capacity_table(area_id: str, per_service: Mapping[str, Cells], organisation_of: Mapping[str, str]) -> Table:
    """The area's table of capacity cells: each service's, and their sums by organisation and for the area (the
    same names, relations and derived figures), so that no withheld service count comes back from a total."""
    table = Table()
    by_org: dict[str, list[Cells]] = {}
    for service_id, cells in sorted(per_service.items()):
        org = organisation_of.get(service_id, f"unknown-{service_id}")
        table.add(Node(Level.SERVICE, service_id, org, node_id(Level.ORGANISATION, org)), cells)
        by_org.setdefault(org, []).append(cells)
    for org, parts in sorted(by_org.items()):
        table.add(Node(Level.ORGANISATION, org, org, node_id(Level.AREA, area_id)), _sum(parts))
    table.add(Node(Level.AREA, area_id, None), _sum(list(per_service.values())))
    return table


def _sum(parts: Sequence[Cells]) -> Cells:
    total = Cells()
    for part in parts:
        for name, value in part.published.items():
            total.published[name] = total.published.get(name, 0) + value
        for name, value in part.latent.items():
            total.latent[name] = total.latent.get(name, 0) + value
        for relation in part.relations:
            if relation not in total.relations:
                total.relations.append(relation)
        total.derived |= part.derived
        total.aliases |= part.aliases
    return total


@dataclass
class ServiceActivity:
    """What the forecast and the weekly flows read of one service: referrals submitted and started by day, the
    children waiting at the end of each day asked for, and the queue on as_of."""

    submitted: dict[date, int] = field(default_factory=dict)
    started: dict[date, int] = field(default_factory=dict)
    waiting_on: dict[date, int] = field(default_factory=dict)
    queue: list[Waiter] = field(default_factory=list)
