"""Demand, capacity and the breach forecast (issue #18), checked against scenarios worked by hand."""

from __future__ import annotations

from datetime import date

from waitlists.domain.capacity import (
    Waiter,
    Week,
    capacity_table,
    forecast,
    forecast_cells,
    mean_per_week,
    ranking,
    service_forecast,
    weekly_flows,
    weeks_ending,
)
from waitlists.domain.clocks import ClockKind, ServiceClocks
from waitlists.domain.disclosure import Controlled, Level, node_id
from waitlists.service_layer import capacity as capacity_cases

AS_OF = date(2026, 3, 1)  # a Sunday: week k after it runs from Monday 2 March + 7(k-1) to the Sunday after
QUEUE = [
    Waiter("a", 60, date(2026, 2, 25)),  # breached before as_of: takes a start, no forecast breach
    Waiter("b", 50, date(2026, 3, 4)),  # week 1
    Waiter("c", 40, date(2026, 3, 12)),  # week 2
    Waiter("d", 30, None),  # clock paused: cannot breach
    Waiter("e", 20, date(2026, 3, 16)),  # week 3, its first day
]


def test_the_queue_worked_by_hand_at_one_start_and_one_arrival_a_week() -> None:
    # Starts on each week's first day d_k (2 Mar, 9 Mar, ...), one a week, longest-waiting first:
    # a on d1; b on d2 (due 4 Mar: breach, week 1); c on d3 (due 12 Mar: breach, week 2); d on d4; e on d5 (due
    # 16 Mar: breach, week 3). New referrals n_j arrive on d_j, due 14 days later (target 13): on d_{j+2}; each is
    # started on d_{j+5}, so every one breaches, in week j + 2: n1..n10 within 12 weeks (weeks 3 to 12).
    found = forecast(QUEUE, AS_OF, throughput=1, demand=1, target=13, horizon_weeks=12)
    assert found.breaches_by_week == (1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    assert found.within(4) == 5
    assert found.within(12) == 13


def test_two_starts_a_week_avoid_all_but_three() -> None:
    # d1: a, b (b due 4 Mar, started 2 Mar: met). d2: c (due 12 Mar), d. d3: e and n1, both due on d3: started on
    # their breach date, so both breach (week 3). d4: n2 (due d4: breach, week 4), n3 (due d5). From d5 each new
    # referral starts the day it arrives.
    found = forecast(QUEUE, AS_OF, throughput=2, demand=1, target=13, horizon_weeks=12)
    assert found.breaches_by_week == (0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0)
    assert (found.within(4), found.within(12)) == (3, 3)


def test_a_fractional_rate_starts_its_whole_part_cumulatively() -> None:
    # 1.5 a week: 1, 2, 1, 2 ... starts (1, 3, 4, 6 in all). No arrivals. Queue b (due 4 Mar), c (due 12 Mar),
    # e (due 16 Mar), f (due 24 Mar): b on d1 met; c, e on d2 met; f on d3 (16 Mar) met: nothing breaches.
    queue = [Waiter("b", 50, date(2026, 3, 4)), Waiter("c", 40, date(2026, 3, 12)),
             Waiter("e", 20, date(2026, 3, 16)), Waiter("f", 10, date(2026, 3, 24))]  # fmt: skip
    assert forecast(queue, AS_OF, throughput=1.5, demand=0, target=None, horizon_weeks=4).within(4) == 0
    # At 0.5 a week: b on d2 (9 Mar, breach w1); c on d4 (23 Mar, breach w2); e, f never: breach w3, w4.
    slow = forecast(queue, AS_OF, throughput=0.5, demand=0, target=None, horizon_weeks=4)
    assert slow.breaches_by_week == (1, 1, 1, 1)


def test_what_if_and_ranking_per_extra_start() -> None:
    # One start and one referral a week over the 8 weeks ending on as_of: 8 each, on the Mondays.
    mondays = [date(2026, 1, 5 + 7 * i) if i < 4 else date(2026, 2, 2 + 7 * (i - 4)) for i in range(8)]
    started = dict.fromkeys(mondays, 1)
    submitted = dict.fromkeys(mondays, 1)
    assert mean_per_week(started, AS_OF) == 1
    service = ServiceClocks((ClockKind.SERVICE_TARGET,), target_days=13)
    busy = service_forecast("svc-busy", service, QUEUE, AS_OF, submitted, started, extra_starts=1)
    assert (busy.base.within(4), busy.base.within(12)) == (5, 13)
    assert (busy.avoided(4), busy.avoided(12)) == (2, 10)
    assert busy.avoided_per_extra_start == 10 / 12
    calm = service_forecast("svc-calm", service, QUEUE[:1], AS_OF, submitted, started, extra_starts=1)
    assert [f.service_id for f in ranking([calm, busy])] == ["svc-busy", "svc-calm"]


def test_weeks_are_seven_days_ending_on_as_of_and_count_flows() -> None:
    weeks = weeks_ending(date(2026, 3, 4), 2)  # a Wednesday: the weeks run Thursday to Wednesday
    assert weeks == [Week(date(2026, 2, 19), date(2026, 2, 25)), Week(date(2026, 2, 26), date(2026, 3, 4))]
    flows = weekly_flows(
        weeks,
        submitted={date(2026, 2, 18): 7, date(2026, 2, 23): 2, date(2026, 3, 1): 1, date(2026, 3, 4): 4,
                   date(2026, 3, 5): 9},
        started={date(2026, 2, 22): 5, date(2026, 3, 3): 2},
        waiting_on={date(2026, 2, 18): 10, date(2026, 2, 25): 13, date(2026, 3, 4): 15},
    )  # fmt: skip
    assert [(f.demand, f.throughput, f.net_change) for f in flows] == [(2, 5, 3), (5, 2, 2)]


def test_a_small_forecast_is_withheld_from_others_and_shown_to_its_organisation() -> None:
    service = ServiceClocks((ClockKind.SERVICE_TARGET,), target_days=13)
    mondays = [date(2026, 2, 2 + 7 * i) for i in range(4)]
    rates = dict.fromkeys(mondays, 2)  # 1 a week over 8 weeks
    small = service_forecast("svc-a", service, QUEUE, AS_OF, rates, rates, extra_starts=1)  # 5 within 4 weeks
    tiny = service_forecast("svc-b", service, QUEUE[:2], AS_OF, {}, {}, extra_starts=1)  # b alone: 1 breach
    table = capacity_table(
        "la-x", {"svc-a": forecast_cells(small), "svc-b": forecast_cells(tiny)}, {"svc-a": "org-a", "svc-b": "org-b"}
    )
    controlled = Controlled.of(table)
    b = node_id(Level.SERVICE, "svc-b")
    assert tiny.base.within(4) == 1
    assert controlled.for_viewer("org-a").withheld(b, "forecast.base.4")
    assert not controlled.for_viewer("org-b").withheld(b, "forecast.base.4")
    # The area total less svc-a's would give svc-b's 1 back: the area's total is withheld from the public too.
    area = node_id(Level.AREA, "la-x")
    a = node_id(Level.SERVICE, "svc-a")
    public = controlled.for_viewer(None)
    assert public.withheld(area, "forecast.base.4") or public.withheld(a, "forecast.base.4")


def test_a_service_whose_ranking_figures_are_withheld_is_listed_after_the_ranked_ones_unnumbered() -> None:
    def row(service_id: str, withheld: list[str]) -> capacity_cases.ForecastRow:
        return capacity_cases.ForecastRow(None, "service", service_id, service_id, 1.0, 1.0, 28, 10, {}, {}, {},
                                          0.5, withheld)  # fmt: skip

    ranked_by_true_values = [row("svc-c", []), row("svc-b", ["breaches.12"]), row("svc-a", []),
                             row("svc-0", ["avoided_per_extra_start"]), row("svc-d", ["waiting"])]  # fmt: skip
    shown = capacity_cases._ranked_as_shown(ranked_by_true_values)
    assert [(r.scope_id, r.rank) for r in shown] == [
        ("svc-c", 1), ("svc-a", 2), ("svc-d", 3), ("svc-0", None), ("svc-b", None),
    ]  # fmt: skip
