"""Impact figures (issue #18): re-referral, outcomes and time to support, on cases worked by hand."""

from __future__ import annotations

from datetime import date

from waitlists.domain.capacity import capacity_table
from waitlists.domain.disclosure import Controlled, Level, node_id
from waitlists.domain.impact import Completion, ImpactRead, Start, Submission, impact, impact_cells, quantiles

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
    cells = {s: impact_cells(f, ["goals_met"], ["school", "trust"]) for s, f in found.items()}
    controlled = Controlled.of(capacity_table("la-x", cells, {"s1": "org-a", "s2": "org-b"}))
    s1 = node_id(Level.SERVICE, "s1")
    assert controlled.for_viewer("org-b").withheld(s1, "reref.6m.pct")
    assert controlled.for_viewer("org-b").withheld(s1, "started.school.median")
    assert not controlled.for_viewer("org-a").withheld(s1, "started.school.median")
