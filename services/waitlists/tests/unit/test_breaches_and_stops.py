"""Issue 14 §1, case by case: a hold never hides a breach, the breach date is the first day over the
target, completed stops the health and service clocks, same-day exceptions, and the moves the brief
allows (a new hold reason, entered_in_error after a final status). Every figure worked out by hand
from brief §4 "Precise rules"."""

from __future__ import annotations

from datetime import date

import pytest

from waitlists.domain.alerts import AlertKind, due_alerts
from waitlists.domain.clocks import ClockKind, ClockState, ServiceClocks, clock_on
from waitlists.domain.facts import StopOutcome, derive
from waitlists.domain.metrics import Period, clocks_on
from waitlists.domain.timeline import StatusChange, Timeline

from .fake_facts import tally

D = date.fromisoformat
CAMHS = ServiceClocks((ClockKind.CYPMH_4W,))
EHC = ServiceClocks((ClockKind.EHC_DECISION_6W, ClockKind.EHC_NO_PLAN_16W, ClockKind.EHC_PLAN_20W))
Q1 = Period(D("2026-01-01"), D("2026-03-31"))


def timeline(*changes: tuple[str | None, ...], service: str = "svc") -> Timeline:
    parsed = []
    for version, (status, day, *codes) in enumerate(changes, start=1):
        reason, outcome = [*codes, None, None][:2]
        assert status is not None and day is not None
        parsed.append(StatusChange(version, status, D(day), reason, outcome))
    return Timeline.of("r-1", "child", service, "routine", parsed)


def counted(t: Timeline, service: ServiceClocks, day: str, kind: ClockKind = ClockKind.CYPMH_4W) -> tuple[int, ...]:
    """(waiting, breached and waiting, imminent, stopped in Q1 to the day, met, stopped excluding exceptions,
    exceptions) as the facts add up on ``day``."""
    facts = derive(t, service, [t])
    found = tally([facts] if facts else [], D(day), Period(Q1.start, D(day)))
    c = found.clock(kind.value)
    waiting = sum(found.waiting_days.values())
    return waiting, c.breached_waiting, c.imminent, c.stopped, c.met, c.stopped_ex, c.exceptions


# Submitted 5 Jan: 28 days are reached on 2 Feb, so the first day over the target is 3 Feb.
BREACHED_THEN_HELD = timeline(
    ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("on_hold", "2026-02-10", "family_unavailable")
)


def test_a_hold_after_the_breach_keeps_it_breached() -> None:
    clock = clock_on(BREACHED_THEN_HELD, ClockKind.CYPMH_4W, D("2026-02-20"))
    assert clock is not None
    # 36 days waited by the hold on 10 Feb; the pause holds it there.
    assert (clock.state, clock.paused, clock.waiting_days) == (ClockState.BREACHED, True, 36)
    assert (clock.breached_on, clock.breach_date) == (D("2026-02-03"), D("2026-02-03"))
    assert clock.in_breach and not clock.imminent_on(D("2026-02-20"))
    # Waiting 1, breached and waiting 1, nothing imminent or stopped.
    assert counted(BREACHED_THEN_HELD, CAMHS, "2026-02-20") == (1, 1, 0, 0, 0, 0, 0)
    # The breach alert is due while paused, for the day it breached.
    alerts = due_alerts([clock], D("2026-02-20"), 7)
    assert [(a.kind, a.clock.breach_date) for a in alerts] == [(AlertKind.BREACHED, D("2026-02-03"))]


def test_a_hold_before_the_breach_date_pauses_without_a_breach() -> None:
    t = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("on_hold", "2026-01-30", "family_unavailable")
    )
    clock = clock_on(t, ClockKind.CYPMH_4W, D("2026-02-20"))
    assert clock is not None
    assert (clock.state, clock.paused, clock.waiting_days, clock.breach_date, clock.breached_on) == (
        ClockState.PAUSED, True, 25, None, None,
    )  # fmt: skip
    assert counted(t, CAMHS, "2026-02-20") == (1, 0, 0, 0, 0, 0, 0)
    assert due_alerts([clock], D("2026-02-20"), 7) == []


def test_a_hold_on_the_breach_date_itself_comes_too_late() -> None:
    # On 3 Feb the clock has waited 29 days (the hold's day counts as waited): breached that day.
    t = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("on_hold", "2026-02-03", "appointment_declined")
    )
    clock = clock_on(t, ClockKind.CYPMH_4W, D("2026-02-10"))
    assert clock is not None and (clock.state, clock.waiting_days, clock.breached_on) == (
        ClockState.BREACHED, 29, D("2026-02-03"),
    )  # fmt: skip
    early = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("on_hold", "2026-02-02", "family_unavailable")
    )
    paused = clock_on(early, ClockKind.CYPMH_4W, D("2026-02-10"))
    assert paused is not None and (paused.state, paused.waiting_days) == (ClockState.PAUSED, 28)


def test_later_holds_do_not_move_the_breach_date() -> None:
    # Held 10-20 Feb after breaching on 3 Feb: on 1 Mar 55 days less 10 paused = 45 waited; breach date 3 Feb,
    # not 3 Feb + 10.
    t = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("on_hold", "2026-02-10", "family_unavailable"),
        ("accepted", "2026-02-20"),
    )  # fmt: skip
    clock = clock_on(t, ClockKind.CYPMH_4W, D("2026-03-01"))
    assert clock is not None
    assert (clock.state, clock.paused, clock.waiting_days) == (ClockState.BREACHED, False, 45)
    assert (clock.breach_date, clock.breached_on) == (D("2026-02-03"), D("2026-02-03"))
    assert counted(t, CAMHS, "2026-03-01") == (1, 1, 0, 0, 0, 0, 0)
    # Started on 10 Mar: 64 days less 10 paused = 54, late; it breached on 3 Feb.
    started = timeline(*[(c.status, c.on.isoformat(), c.reason_code) for c in t.changes], ("in_progress", "2026-03-10"))
    stop = clock_on(started, ClockKind.CYPMH_4W, D("2026-03-31"))
    assert stop is not None and (stop.state, stop.waiting_days, stop.breached_on) == (
        ClockState.BREACHED, 54, D("2026-02-03"),
    )  # fmt: skip


def test_a_pause_before_the_breach_moves_its_date_and_one_after_does_not() -> None:
    # Held 20-30 Jan (before 3 Feb): breach date 13 Feb. Held again 20 Feb-1 Mar (after it): still 13 Feb.
    t = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("on_hold", "2026-01-20", "family_unavailable"),
        ("accepted", "2026-01-30"), ("on_hold", "2026-02-20", "family_unavailable"), ("accepted", "2026-03-01"),
    )  # fmt: skip
    for day in ("2026-02-14", "2026-02-25", "2026-03-05"):
        clock = clock_on(t, ClockKind.CYPMH_4W, D(day))
        assert clock is not None and clock.state is ClockState.BREACHED, day
        assert (clock.breach_date, clock.breached_on) == (D("2026-02-13"), D("2026-02-13")), day
    before = clock_on(t, ClockKind.CYPMH_4W, D("2026-02-12"))
    assert before is not None and (before.state, before.waiting_days) == (ClockState.RUNNING, 28)
    assert before.imminent_on(D("2026-02-12"))


@pytest.mark.parametrize(
    ("kind", "target", "completed_on", "state", "waited"),
    [
        (ClockKind.CYPMH_4W, None, "2026-01-20", ClockState.MET, 15),
        (ClockKind.CYPMH_4W, None, "2026-03-01", ClockState.BREACHED, 55),
        (ClockKind.RTT_18W, None, "2026-03-01", ClockState.MET, 55),
        (ClockKind.SERVICE_TARGET, 56, "2026-03-01", ClockState.MET, 55),
        (ClockKind.SERVICE_TARGET, 30, "2026-03-01", ClockState.BREACHED, 55),
    ],
)
def test_completed_before_in_progress_stops_the_clock(
    kind: ClockKind, target: int | None, completed_on: str, state: ClockState, waited: int
) -> None:
    t = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("completed", completed_on, None, "discharged")
    )
    clock = clock_on(t, kind, D("2026-06-30"), target)
    assert clock is not None
    assert (clock.state, clock.waiting_days, clock.stopped_on, clock.breach_date) == (
        state, waited, D(completed_on), None,
    )  # fmt: skip
    assert clock.stopped and not clock.imminent_on(D("2026-06-30"))
    service = ServiceClocks((kind,), target)
    met = int(state is ClockState.MET)
    # Not waiting, not breached and waiting, stopped in the quarter: met or late by the days on that date.
    facts = derive(t, service, [t])
    assert facts is not None and [(s.stopped_on, s.outcome) for s in facts.clock_stops] == [
        (D(completed_on), StopOutcome.MET if met else StopOutcome.LATE)
    ]
    assert counted(t, service, "2026-03-31", kind) == (0, 0, 0, 1, met, 1, 0)
    assert due_alerts(clocks_on(t, service, D("2026-06-30")), D("2026-06-30"), 7) == []


def test_completion_after_a_pause_counts_the_days_waited_less_the_pause() -> None:
    # 5 Jan to 3 Feb is 29 days, less 14 held (20 Jan-3 Feb): 15, met.
    t = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("on_hold", "2026-01-20", "family_unavailable"),
        ("completed", "2026-02-03", None, "disengaged"),
    )  # fmt: skip
    clock = clock_on(t, ClockKind.CYPMH_4W, D("2026-03-01"))
    assert clock is not None and (clock.state, clock.waiting_days) == (ClockState.MET, 15)


@pytest.mark.parametrize(
    ("changes", "decision_exception", "plan_exception"),
    [
        # Accepted on 20 Feb, the exception hold recorded after it on the same day: an exception.
        ((("accepted", "2026-02-20"), ("on_hold", "2026-02-20", "school_closed_4_weeks")), True, True),
        # Recorded before it on the same day: an exception too.
        (
            (
                ("acknowledged", "2026-01-06"),
                ("on_hold", "2026-02-20", "school_closed_4_weeks"),
                ("accepted", "2026-02-20"),
            ),
            True,
            True,
        ),
        # The day after the decision: not the decision clock's exception (the running plan clock's, still).
        ((("accepted", "2026-02-20"), ("on_hold", "2026-02-21", "school_closed_4_weeks")), False, True),
        # A hold that is no statutory exception.
        ((("accepted", "2026-02-20"), ("on_hold", "2026-02-20", "awaiting_information")), False, False),
    ],
)
def test_an_exception_on_the_day_of_the_stop_counts(
    changes: tuple[tuple[str, ...], ...], decision_exception: bool, plan_exception: bool
) -> None:
    t = timeline(("submitted", "2026-01-05"), *changes)
    decision = clock_on(t, ClockKind.EHC_DECISION_6W, D("2026-03-31"))
    # Decided on 20 Feb after 46 days: late either way (the first day over 42 was 17 Feb).
    assert decision is not None
    assert (decision.state, decision.waiting_days, decision.breached_on) == (ClockState.BREACHED, 46, D("2026-02-17"))
    assert decision.exception is decision_exception
    plan = clock_on(t, ClockKind.EHC_PLAN_20W, D("2026-03-31"))
    assert plan is not None and (plan.state, plan.exception) == (ClockState.RUNNING, plan_exception)
    # Waiting 1; stopped in Q1: 1, met 0; excluding exceptions: 0 if it is one; exceptions: 1 if it is one.
    e = int(decision_exception)
    assert counted(t, EHC, "2026-03-31", ClockKind.EHC_DECISION_6W) == (1, 0, 0, 1, 0, 1 - e, e)


def test_entered_in_error_after_completion_removes_the_referral_from_every_date() -> None:
    t = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("in_progress", "2026-01-20"),
        ("completed", "2026-02-01", None, "support_completed"), ("entered_in_error", "2026-03-01"),
    )  # fmt: skip
    assert derive(t, CAMHS, [t]) is None
    for day in ("2026-01-10", "2026-01-25", "2026-02-15", "2026-03-31"):
        assert counted(t, CAMHS, day) == (0, 0, 0, 0, 0, 0, 0), day


def test_a_new_hold_reason_changes_whether_the_clock_pauses_from_its_date() -> None:
    # Held for capacity on 10 Jan (no pause), then for the family on 20 Jan (paused from then): 15 days waited.
    t = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("on_hold", "2026-01-10", "service_capacity"),
        ("on_hold", "2026-01-20", "family_unavailable"),
    )  # fmt: skip
    clock = clock_on(t, ClockKind.CYPMH_4W, D("2026-02-01"))
    assert clock is not None and (clock.state, clock.paused, clock.waiting_days) == (ClockState.PAUSED, True, 15)
    assert counted(t, CAMHS, "2026-02-01") == (1, 0, 0, 0, 0, 0, 0)
    facts = derive(t, CAMHS, [t])
    assert facts is not None and [(w.valid_from, w.waiting_since, w.paused_days) for w in facts.waiting] == [
        (D("2026-01-05"), D("2026-01-05"), None),
        (D("2026-01-20"), None, 15),
    ]
    # The other way round: paused from 10 Jan until the capacity hold on 20 Jan; 1 Feb: 27 days less 10 = 17.
    back = timeline(
        ("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("on_hold", "2026-01-10", "family_unavailable"),
        ("on_hold", "2026-01-20", "service_capacity"),
    )  # fmt: skip
    running = clock_on(back, ClockKind.CYPMH_4W, D("2026-02-01"))
    assert running is not None and (running.state, running.paused, running.waiting_days) == (
        ClockState.RUNNING, False, 17,
    )  # fmt: skip
    assert running.breach_date == D("2026-02-13")  # 5 Jan + 29 + 10 paused
    assert counted(back, CAMHS, "2026-02-10") == (1, 0, 1, 0, 0, 0, 0)  # 26 waited, breaching within 7 days
