"""Figures over a small hand-worked set of referrals (brief §4 precise rules)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest

from waitlists.domain.clocks import ClockKind, ServiceClocks
from waitlists.domain.metrics import Period
from waitlists.domain.stats import nearest_rank, percent, suppress
from waitlists.domain.timeline import StatusChange, Timeline, paused_days

from . import oracle, shapes
from .fake_facts import figures_from_facts

D = date.fromisoformat
SERVICES = {
    "camhs": ServiceClocks((ClockKind.CYPMH_4W,)),
    "ehc": ServiceClocks((ClockKind.EHC_DECISION_6W, ClockKind.EHC_NO_PLAN_16W, ClockKind.EHC_PLAN_20W)),
    "slt": ServiceClocks((ClockKind.SERVICE_TARGET,), target_days=56),
}


def t(referral: str, child: str, service: str, *changes: tuple[str, ...]) -> Timeline:
    parsed = [
        StatusChange(v, c[0], D(c[1]), c[2] if len(c) > 2 else None, c[3] if len(c) > 3 else None)
        for v, c in enumerate(changes, start=1)
    ]
    return Timeline.of(referral, child, service, "routine", parsed)


# As of 2026-03-31, period 2026-01-01..2026-03-31:
A = t(
    "a", "c1", "camhs", ("submitted", "2026-01-05"), ("accepted", "2026-01-12"), ("in_progress", "2026-01-30")
)  # met, 25 days
B = t(
    "b", "c2", "camhs", ("submitted", "2026-01-05"), ("accepted", "2026-01-20"), ("in_progress", "2026-02-20")
)  # breached, 46
C = t(
    "c", "c3", "camhs", ("submitted", "2026-02-01"), ("rejected", "2026-02-10", "outside_remit")
)  # closed before support
D_ = t(
    "d", "c3", "slt", ("submitted", "2026-02-12"), ("accepted", "2026-02-20")
)  # closes c3's gap: 10 days; waiting 47
E = t("e", "c4", "camhs", ("submitted", "2025-01-06"))  # waiting 449 days = 64 weeks
F = t("f", "c4", "slt", ("submitted", "2026-03-30"))  # c4 on two lists; waiting 1 day
G = t("g", "c5", "camhs", ("submitted", "2026-03-01"), ("entered_in_error", "2026-03-02"))  # gone everywhere
H = t("h", "c6", "camhs", ("submitted", "2026-03-10"), ("withdrawn", "2026-03-20"))  # gap open 11 days on 31 Mar
ALL = [A, B, C, D_, E, F, G, H]


def plain(x: Timeline) -> oracle.Referral:
    changes = tuple(oracle.Change(c.status, c.on, c.reason_code, c.outcome_code) for c in x.changes)
    return oracle.Referral(x.referral_id, x.child_ref, x.service_id, x.urgency, changes)


PLAIN_SERVICES = {k: oracle.Service(tuple(c.value for c in s.clocks), s.target_days) for k, s in SERVICES.items()}


def by_rules(in_scope: list[Timeline], day: date, period: Period) -> dict[str, Any]:
    """The independent oracle's figures (plain dicts)."""
    return oracle.figures([plain(x) for x in ALL], PLAIN_SERVICES, {x.service_id for x in in_scope}, day, period.start)


def from_facts(in_scope: list[Timeline], day: date, period: Period) -> dict[str, Any]:
    """The production's figures from facts, in the oracle's plain shape."""
    return shapes.plain(figures_from_facts(in_scope, ALL, SERVICES, day, period))


both_ways = pytest.mark.parametrize("figures", [by_rules, from_facts], ids=["rules", "facts"])


@both_ways
def test_area_figures_on_31_march(figures) -> None:  # type: ignore[no-untyped-def]
    f = figures(ALL, D("2026-03-31"), Period(D("2026-01-01"), D("2026-03-31")))
    # Waiting: D (47 days), E (449), F (1). Sorted 1, 47, 449: median rank ceil(1.5)=2 -> 47; p90 rank 3 -> 449.
    assert f["waiting"]["waiting"] == 3
    assert f["waiting"]["distribution"] == {"0-4": 1, "4-18": 1, "18-52": 0, "52+": 1}
    assert (f["waiting"]["median_days"], f["waiting"]["p90_days"]) == (47, 449)
    assert f["waiting"]["long_waiters"] == {"52": 1, "65": 0, "78": 0, "104": 0}
    # CYPMH: A met (25), B breached (46); E running since 2025 is breached and waiting.
    camhs = f["clocks"]["cypmh_4w"]
    assert (camhs["stopped"], camhs["met"], camhs["pct_within_target"], camhs["breached_waiting"]) == (2, 1, 50.0, 1)
    # SLT target 56: D waiting 47 on 31 Mar, breach date 12 Feb + 57 = 10 Apr, not within 7 days; F fine.
    assert f["clocks"]["service_target"]["imminent"] == 0
    # First final moves in the period: C rejected (10 Feb), H withdrawn (20 Mar); G is in error.
    assert (f["closed_in_period"], f["rejected"], f["rejection_rate"]) == (2, 1, 50.0)
    assert f["rejections_by_reason"] == {"outside_remit": 1}
    assert f["closed_before_support"] == 2
    # Gaps: c3 closed after 10 days (accepted at SLT on 20 Feb); c6 open 11 days.
    assert (f["handoff_gaps"]["closed"], f["handoff_gaps"]["median_days"], f["handoff_gaps"]["open"]) == (1, 10, 1)
    assert f["handoff_gaps"]["open_median_days"] == 11
    assert f["children_on_several_lists"] == 1
    assert f["weekly_flows"][-1] == (D("2026-03-25"), D("2026-03-31"), 1, 0, 0)  # arrived, started, closed


@both_ways
def test_the_same_figures_as_they_stood_on_a_past_date(figures) -> None:  # type: ignore[no-untyped-def]
    f = figures(ALL, D("2026-02-15"), Period(D("2026-01-01"), D("2026-02-15")))
    # Waiting on 15 Feb: B (accepted, 41 days), D (submitted 12 Feb, 3 days), E (405 days).
    assert f["waiting"]["waiting"] == 3
    assert f["clocks"]["cypmh_4w"]["stopped"] == 1  # only A had stopped by then
    assert f["handoff_gaps"]["open"] == 1 and f["handoff_gaps"]["open_median_days"] == 5  # c3's gap, not yet closed


@both_ways
def test_imminent_breach_is_within_seven_days(figures) -> None:  # type: ignore[no-untyped-def]
    f = figures([D_], D("2026-04-03"), Period(D("2026-01-01"), D("2026-04-03")))
    assert f["clocks"]["service_target"]["imminent"] == 1  # breach date 10 Apr is 7 days after 3 Apr


def test_family_pauses_count_in_waiting_days() -> None:
    held = t("x", "c9", "camhs", ("submitted", "2026-01-05"), ("acknowledged", "2026-01-06"),
             ("on_hold", "2026-01-10", "family_unavailable"), ("accepted", "2026-01-20"))  # fmt: skip
    assert paused_days(held.known_on(D("2026-01-15")), D("2026-01-15")) == 5
    assert paused_days(held.known_on(D("2026-02-01")), D("2026-02-01")) == 10


def test_statistics_helpers() -> None:
    assert nearest_rank(Counter([5, 1, 3, 2, 4]), 0.5) == 3
    assert nearest_rank(Counter([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 0.9) == 9
    assert nearest_rank(Counter([7, 7, 7, 1]), 0.5) == 7
    assert nearest_rank(Counter(), 0.5) is None
    assert percent(1, 3) == 33.3
    assert percent(2, 3) == 66.7
    assert percent(1, 8) == 12.5
    assert percent(1, 16) == 6.3  # 6.25 rounds half up
    assert percent(0, 0) is None
    assert [suppress(n) for n in (0, 1, 4, 5)] == [0, None, None, 5]
