"""The figures worked out the slow, obvious way: every timeline evaluated on the day by the rules.

This is the reference the fact tables are held to (tests only): for any timelines and any date,
adding up the facts must give exactly what these functions give.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta

from waitlists.domain.clocks import ClockState, ServiceClocks
from waitlists.domain.metrics import (
    BUCKETS,
    LONG_WAIT_WEEKS,
    ClockFigures,
    Figures,
    GapFigures,
    Period,
    WaitingFigures,
    WeeklyFlow,
    clocks_on,
)
from waitlists.domain.stats import nearest_rank, percent
from waitlists.domain.timeline import CLOSED_BEFORE_SUPPORT, Timeline, waiting_days


def _ranked(values: list[int], p: float) -> int | None:
    return nearest_rank(Counter(values), p)


def live(timelines: Iterable[Timeline]) -> list[Timeline]:
    return [t for t in timelines if not t.in_error and t.submitted_on is not None]


def waiting_figures(timelines: Sequence[Timeline], services: Mapping[str, ServiceClocks], day: date) -> WaitingFigures:
    figures = WaitingFigures()
    days = []
    for t in timelines:
        if not t.is_waiting_on(day):
            continue
        service = services.get(t.service_id, ServiceClocks(()))
        wait = waiting_days(t, day, service.pauses)
        days.append(wait)
        weeks = wait // 7
        for name, low, high in BUCKETS:
            if weeks >= low and (high is None or weeks < high):
                figures.distribution[name] += 1
        for threshold in LONG_WAIT_WEEKS:
            if weeks >= threshold:
                figures.long_waiters[str(threshold)] += 1
    figures.waiting = len(days)
    figures.total_days = sum(days)
    figures.median_days = _ranked(days, 0.5)
    figures.p90_days = _ranked(days, 0.9)
    return figures


def clock_figures(
    timelines: Sequence[Timeline], services: Mapping[str, ServiceClocks], day: date, period: Period
) -> dict[str, ClockFigures]:
    figures: dict[str, ClockFigures] = {}
    for t in timelines:
        service = services.get(t.service_id)
        if service is None:
            continue
        for clock in clocks_on(t, service, day):
            f = figures.setdefault(clock.kind.value, ClockFigures())
            f.exceptions += clock.exception
            if clock.stopped and clock.stopped_on is not None and clock.stopped_on in period:
                met = clock.state is ClockState.MET
                f.stopped += 1
                f.met += met
                if not clock.exception:
                    f.stopped_ex += 1
                    f.met_ex += met
            elif clock.state is ClockState.BREACHED and clock.stopped_on is None:
                f.breached_waiting += 1
            elif clock.imminent_on(day):
                f.imminent += 1
            if clock.state is ClockState.RUNNING and clock.breach_date is not None:
                ahead = (clock.breach_date - day).days
                if 1 <= ahead <= 28:
                    f.upcoming[(ahead - 1) // 7] += 1
    return figures


def closures(timelines: Sequence[Timeline], period: Period) -> tuple[int, Counter[str], int]:
    """(referrals whose first final move fell in the period, rejections by reason, closed before support)."""
    closed = 0
    reasons: Counter[str] = Counter()
    before_support = 0
    for t in timelines:
        final = t.first_final()
        if final is None or final.on not in period:
            continue
        closed += 1
        if final.status == "rejected":
            reasons[final.reason_code or "unknown"] += 1
        if final.status in CLOSED_BEFORE_SUPPORT and t.reached("in_progress", by=final.on) is None:
            before_support += 1
    return closed, reasons, before_support


def handoff_gaps(
    opened_in_scope: Sequence[Timeline], journeys: Mapping[str, Sequence[Timeline]], day: date, period: Period
) -> GapFigures:
    """Gaps opened at a service in scope: from rejected, withdrawn or handed_off to the first acceptance
    at another service, on a referral of the same child submitted on or after the gap's day."""
    closed_days: list[int] = []
    open_days: list[int] = []
    for t in opened_in_scope:
        final = t.first_final()
        if final is None or final.status not in CLOSED_BEFORE_SUPPORT or final.on > day:
            continue
        acceptances = [
            accepted.on
            for other in journeys.get(t.child_ref, ())
            if other.service_id != t.service_id
            and other.submitted_on is not None
            and other.submitted_on >= final.on
            and (accepted := other.reached("accepted", by=day)) is not None
        ]
        if acceptances:
            closed_on = min(acceptances)
            if closed_on in period:
                closed_days.append((closed_on - final.on).days)
        else:
            open_days.append((day - final.on).days)
    return GapFigures(
        closed=len(closed_days),
        median_days=_ranked(closed_days, 0.5),
        p90_days=_ranked(closed_days, 0.9),
        open=len(open_days),
        open_median_days=_ranked(open_days, 0.5),
    )


def children_on_several_lists(timelines: Sequence[Timeline], day: date) -> int:
    services_by_child: defaultdict[str, set[str]] = defaultdict(set)
    for t in timelines:
        if t.is_waiting_on(day):
            services_by_child[t.child_ref].add(t.service_id)
    return len([s for s in services_by_child.values() if len(s) >= 2])


def weekly_flows(timelines: Sequence[Timeline], day: date, weeks: int = 12) -> list[WeeklyFlow]:
    """Referrals in, started (in_progress) and closed (first final move) in each of the ``weeks``
    seven-day windows ending on ``day``; windows end on the reporting date, so none is partial."""
    flows = []
    for back in range(weeks - 1, -1, -1):
        end = day - timedelta(days=7 * back)
        window = Period(end - timedelta(days=6), end)
        started = sum(1 for t in timelines if (s := t.reached("in_progress", by=day)) and s.on in window)
        closed = sum(1 for t in timelines if (f := t.first_final()) and f.on in window and f.on <= day)
        arrived = sum(1 for t in timelines if t.submitted_on is not None and t.submitted_on in window)
        flows.append(WeeklyFlow(window.start, window.end, arrived, started, closed))
    return flows


def figures(
    in_scope: Sequence[Timeline],
    journeys: Mapping[str, Sequence[Timeline]],
    services: Mapping[str, ServiceClocks],
    day: date,
    period: Period,
) -> Figures:
    scope = live(in_scope)
    closed, reasons, before_support = closures(scope, period)
    rejected = sum(reasons.values())
    return Figures(
        as_of=day,
        period=period,
        waiting=waiting_figures(scope, services, day),
        clocks=clock_figures(scope, services, day, period),
        closed_in_period=closed,
        rejected=rejected,
        rejection_rate=percent(rejected, closed),
        rejections_by_reason=dict(sorted(reasons.items())),
        closed_before_support=before_support,
        handoff_gaps=handoff_gaps(scope, {k: live(v) for k, v in journeys.items()}, day, period),
        children_on_several_lists=children_on_several_lists(scope, day),
        weekly_flows=weekly_flows(scope, day),
    )


def comparable(f: Figures) -> Figures:
    """Clock entries with nothing to count are left out: the rules list the clocks that exist on the day,
    the service lists every clock its services run, and an idle clock is all zeros either way."""
    idle = ClockFigures()
    return replace(f, clocks={kind: c for kind, c in f.clocks.items() if c != idle})
