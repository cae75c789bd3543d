"""Impact figures (issue #18): re-referral, outcomes and time to support, on cases worked by hand."""

from __future__ import annotations

from datetime import date

from waitlists.domain.disclosure import Controlled, Level, node_id
from waitlists.domain.impact import (
    Completion,
    ImpactRead,
    Start,
    Submission,
    impact,
    impact_cells,
    impact_table,
    need_codes,
    quantiles,
)

AS_OF = date(2026, 12, 31)
# 6-month window (182 days): completions from 3 July 2025 to 2 July 2026 count. 12 months (365 days): 2025.
KINDS = {"s1": "cypmh_4w", "s2": "cypmh_4w", "s3": "rtt_18w"}
READ = ImpactRead(
    completions=[
        Completion("c1", "s1", date(2026, 3, 1), "goals_met"),  # 6-month cohort; re-referred to s2 (same kind)
        Completion("c2", "s1", date(2025, 6, 1), None),  # 12-month cohort; re-referred only to another kind, or late
        Completion(
            "c3", "s1", date(2026, 6, 1), "goals_met"
        ),  # 6-month cohort; a referral the same day is no re-referral
    ],
    submissions=[
        Submission("c1", "s1", date(2025, 12, 1)),  # the completed referral itself: before the completion
        Submission("c1", "s2", date(2026, 5, 1)),
        Submission("c2", "s3", date(2025, 8, 1)),
        Submission("c2", "s1", date(2026, 7, 1)),  # 395 days after: outside 12 months
        Submission("c3", "s1", date(2026, 6, 1)),
    ],
    starts=[Start("s1", "school", 10, 2), Start("s1", "trust", 30), Start("s1", "school", 50)],
)


def test_rereferral_outcomes_and_time_to_support_worked_by_hand() -> None:
    found = impact(READ, KINDS, ["s1", "s2"], AS_OF)["s1"]
    assert found.rereferral == {"6m": (2, 1), "12m": (1, 0)}
    assert found.outcomes == {"goals_met": 2}  # c2's completion is before the 12 months to as_of
    assert quantiles(found.waits["school"]) == (10, 50)  # 10, 10, 50: ranks 2 and 3
    assert quantiles(found.waits["trust"]) == (30, 30)


def test_impact_counts_of_one_to_four_are_withheld_but_not_from_their_organisation() -> None:
    found = impact(READ, KINDS, ["s1", "s2"], AS_OF)
    cells = {s: impact_cells(f, ["goals_met"], ["school", "trust"], ["unknown"]) for s, f in found.items()}
    controlled = Controlled.of(impact_table("la-x", cells, {"s1": "org-a", "s2": "org-b"}))
    s1 = node_id(Level.SERVICE, "s1")
    assert controlled.for_viewer("org-b").withheld(s1, "reref.6m.pct")
    assert controlled.for_viewer("org-b").withheld(s1, "started.school.median")
    assert not controlled.for_viewer("org-a").withheld(s1, "started.school.median")


def test_time_to_support_by_need_code_counts_a_referral_under_each_of_its_codes() -> None:
    read = ImpactRead(starts=[
        Start("s1", "school", 10, 2, ("SEMH",)),
        Start("s1", "trust", 30, 1, ("SEMH", "ASD")),
        Start("s1", "school", 50, 1, ("ASD",)),
        Start("s1", "school", 70),  # projected before need codes were kept
    ])  # fmt: skip
    found = impact(read, KINDS, ["s1"], AS_OF)["s1"]
    # SEMH: 10, 10, 30 (median rank ceil(1.5) = 2, p90 rank ceil(2.7) = 3); ASD: 30, 50 (ranks 1 and 2); unknown: 70.
    assert quantiles(found.need_waits["SEMH"]) == (10, 30)
    assert quantiles(found.need_waits["ASD"]) == (30, 50)
    assert quantiles(found.need_waits["unknown"]) == (70, 70)
    counts = {code: sum(days.values()) for code, days in found.need_waits.items()}
    assert counts == {"SEMH": 3, "ASD": 2, "unknown": 1}  # 6 by code for 5 referrals: the two-code one twice
    assert sum(sum(days.values()) for days in found.waits.values()) == 5


def test_need_codes_of_a_referral() -> None:
    assert need_codes("SEMH", "ASD") == ("SEMH", "ASD")
    assert need_codes("SEMH", "SEMH") == ("SEMH",)  # the same code twice counts once
    assert need_codes(None, "ASD") == ("ASD",)
    assert need_codes(None, None) == ("unknown",)


def _controlled(*starts: Start) -> Controlled:
    """One service s1 of org-a in area la-x, every referral from a school, 20 days to support."""
    found = impact(ImpactRead(starts=list(starts)), KINDS, ["s1"], AS_OF)
    needs = sorted({code for f in found.values() for code in f.need_waits})
    cells = {s: impact_cells(f, [], ["school"], needs) for s, f in found.items()}
    return Controlled.of(impact_table("la-x", cells, {"s1": "org-a"}))


NODES = [node_id(Level.SERVICE, "s1"), node_id(Level.ORGANISATION, "org-a"), node_id(Level.AREA, "la-x")]


def test_a_small_need_code_is_withheld_and_not_given_back_by_the_started_total() -> None:
    # No referral has two codes: SEMH 6 + ASD 3 + SLCN 6 = started 15, so ASD (3) is withheld and so must be SEMH,
    # SLCN or started, at every level (the service, its organisation and the area hold the same counts).
    controlled = _controlled(Start("s1", "school", 20, 6, ("SEMH",)), Start("s1", "school", 20, 3, ("ASD",)),
                             Start("s1", "school", 20, 6, ("SLCN",)))  # fmt: skip
    public = controlled.for_viewer("org-b")
    for node in NODES:
        assert public.withheld(node, "need.ASD")
        assert public.withheld(node, "need.ASD.median")
        assert any(public.withheld(node, name) for name in ("need.SEMH", "need.SLCN", "started"))
    assert not controlled.for_viewer("org-a").withheld(NODES[0], "need.ASD")


def test_a_small_number_of_referrals_with_two_codes_is_not_given_away_by_the_codes_and_the_total() -> None:
    # SEMH 10 + 2 (with ASD) = 12, ASD 2 + 6 = 8, started 18: 12 + 8 - 18 would show that 2 referrals have two codes.
    controlled = _controlled(Start("s1", "school", 20, 10, ("SEMH",)), Start("s1", "school", 20, 2, ("SEMH", "ASD")),
                             Start("s1", "school", 20, 6, ("ASD",))).for_viewer("org-b")  # fmt: skip
    for node in NODES:
        assert any(controlled.withheld(node, name) for name in ("need.SEMH", "need.ASD", "started"))
    assert not controlled.withheld(NODES[0], "started")


def test_codes_that_do_not_add_up_to_the_total_are_not_withheld_when_nothing_is_small() -> None:
    # SEMH 15, ASD 12, started 22: the 5 with two codes is no small number, and no count is.
    controlled = _controlled(Start("s1", "school", 20, 10, ("SEMH",)), Start("s1", "school", 20, 5, ("SEMH", "ASD")),
                             Start("s1", "school", 20, 7, ("ASD",))).for_viewer("org-b")  # fmt: skip
    for node in NODES:
        assert not any(controlled.withheld(node, name) for name in ("need.SEMH", "need.ASD", "started"))


def test_the_few_referrals_without_a_code_are_not_given_away_by_the_total() -> None:
    # SEMH 10 + 6 (with ASD) = 16, ASD 6 + 2 = 8, started 18: 18 - 16 would show the 2 referrals without SEMH.
    controlled = _controlled(Start("s1", "school", 20, 10, ("SEMH",)), Start("s1", "school", 20, 6, ("SEMH", "ASD")),
                             Start("s1", "school", 20, 2, ("ASD",))).for_viewer("org-b")  # fmt: skip
    for node in NODES:
        assert controlled.withheld(node, "need.SEMH") or controlled.withheld(node, "started")
        assert not controlled.withheld(node, "need.ASD")
