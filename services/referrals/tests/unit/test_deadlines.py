"""The deadline a family reads (domain/deadlines.py): the last day within the target (the day before the breach
date waitlists tells), and whether it is on track on the day the family looks."""

from __future__ import annotations

from datetime import date

import pytest

from referrals.domain.deadlines import ClockState, DeadlineStatus, current_deadline, deadline, deadlines

START = date(2026, 1, 20)
BREACH = date(2026, 3, 4)  # a Wednesday: the deadline is Tuesday 3 March


def clock(kind: str = "ehc_decision_6w", state: str = "running", **extra: object) -> ClockState:
    fields: dict[str, object] = {"breach_date": BREACH} | extra
    return ClockState(kind, 42, START, state, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "sentence"),
    [
        ("ehc_decision_6w", "The local authority must decide whether to assess your child by Tuesday 3 March."),
        ("ehc_plan_20w", "The local authority must send you the final EHC plan by Tuesday 3 March."),
        ("cypmh_4w", "Support should start by Tuesday 3 March."),
        ("rtt_18w", "Treatment should start by Tuesday 3 March."),
        ("cypmh_ed", "Treatment should start by Tuesday 3 March."),
        ("cypmh_crisis", "Your child should be seen by Tuesday 3 March."),
        ("service_target", "The service aims to start helping your child by Tuesday 3 March."),
    ],
)
def test_a_running_clock_before_its_deadline_is_on_track(kind: str, sentence: str) -> None:
    found = deadline(clock(kind), date(2026, 2, 1))
    assert (found.status, found.on_track, found.due, found.sentence) == (
        DeadlineStatus.ON_TRACK, True, date(2026, 3, 3), sentence
    )  # fmt: skip


def test_the_deadline_day_itself_is_on_track_and_the_day_after_is_late() -> None:
    assert deadline(clock(), date(2026, 3, 3)).on_track is True
    late = deadline(clock(), date(2026, 3, 4))
    assert (late.status, late.on_track) == (DeadlineStatus.LATE, False)
    assert late.sentence == (
        "The local authority has not decided yet whether to assess your child. "
        "This is late. It should have happened by Tuesday 3 March."
    )


def test_a_clock_told_late_stays_late_and_another_year_is_named() -> None:
    found = deadline(clock("cypmh_4w", "late"), date(2027, 1, 2))
    assert (
        found.sentence == "Support has not started yet. This is late. It should have happened by Tuesday 3 March 2026."
    )


def test_paused_met_late_and_ended() -> None:
    paused = deadline(clock("cypmh_4w", "paused", breach_date=None), date(2026, 2, 1))
    assert paused.status is DeadlineStatus.PAUSED and paused.due is None
    assert paused.sentence is not None and paused.sentence.startswith("The waiting time is paused while")
    met = deadline(clock(state="met", breach_date=None, stopped_on=date(2026, 2, 20)), date(2026, 4, 1))
    assert (met.status, met.on_track, met.sentence) == (
        DeadlineStatus.MET, None, "The local authority decided whether to assess your child on time."
    )  # fmt: skip
    done_late = deadline(clock("rtt_18w", "late", stopped_on=date(2026, 3, 10)), date(2026, 4, 1))
    assert done_late.sentence == (
        "Treatment started on Tuesday 10 March. This was late. It should have happened by Tuesday 3 March."
    )
    ended = deadline(clock(state="ended", breach_date=None, stopped_on=date(2026, 2, 1)), date(2026, 4, 1))
    assert (ended.status, ended.sentence) == (DeadlineStatus.ENDED, None)


def test_an_exception_says_the_date_may_move() -> None:
    found = deadline(clock("ehc_plan_20w", exception=True), date(2026, 2, 1))
    assert found.sentence is not None
    assert found.sentence.startswith("The local authority must send you the final EHC plan by Tuesday 3 March.")
    assert "may" in found.sentence.split(".", 1)[1]


def test_the_deadline_that_applies_is_the_first_still_to_happen() -> None:
    decided = clock(state="met", breach_date=None, stopped_on=date(2026, 2, 20))
    plan = clock("ehc_plan_20w", breach_date=date(2026, 6, 10))
    found = current_deadline([decided, plan], date(2026, 3, 1))
    assert (
        found is not None
        and found.sentence == "The local authority must send you the final EHC plan by Tuesday 9 June."
    )
    assert [d.status for d in deadlines([decided, plan], date(2026, 3, 1))] == [
        DeadlineStatus.MET,
        DeadlineStatus.ON_TRACK,
    ]
    assert current_deadline([decided], date(2026, 3, 1)) == deadline(decided, date(2026, 3, 1))
    ended = clock(state="ended", breach_date=None, stopped_on=date(2026, 2, 1))
    assert current_deadline([ended], date(2026, 3, 1)) is None
    assert current_deadline([], date(2026, 3, 1)) is None


def test_sentences_are_short_and_plain() -> None:
    """Reading age 9 to 11: short sentences, no jargon the family was never told (RTT, breach, clock)."""
    states = [clock(k, s) for k in ("ehc_decision_6w", "ehc_plan_20w", "cypmh_4w", "rtt_18w", "cypmh_crisis")
              for s in ("running", "late", "paused")]  # fmt: skip
    for today in (date(2026, 2, 1), date(2026, 5, 1)):
        for found in deadlines(states, today):
            assert found.sentence is not None
            for sentence in found.sentence.split(". "):
                assert len(sentence.split()) <= 16, sentence
            lowered = found.sentence.lower()
            assert not any(word in lowered for word in ("rtt", "breach", "clock", "target", "statutory"))
