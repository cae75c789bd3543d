"""Clocks against the brief's precise rules, every expected figure worked out by hand."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime

import pytest

from waitlists.domain.clocks import Clock, ClockKind, ClockReading, ClockState, clock_on
from waitlists.domain.timeline import StatusChange, Timeline, business_date

D = date.fromisoformat


def timeline(*changes: tuple[str, str] | tuple[str, str, str | None, str | None], urgency: str = "routine") -> Timeline:
    parsed = []
    for version, change in enumerate(changes, start=1):
        status, day, *codes = change
        reason, outcome = [*codes, None, None][:2]
        parsed.append(StatusChange(version, status, D(day), reason, outcome))
    return Timeline.of("r-1", "child", "svc", urgency, parsed)


def test_cypmh_running_imminent_then_breached() -> None:
    t = timeline(("submitted", "2026-01-05"))
    on_1_feb = clock_on(t, ClockKind.CYPMH_4W, D("2026-02-01"))
    assert on_1_feb is not None
    assert (on_1_feb.state, on_1_feb.waiting_days, on_1_feb.breach_date) == (ClockState.RUNNING, 27, D("2026-02-03"))
    assert on_1_feb.imminent_on(D("2026-02-01"))
    assert not on_1_feb.imminent_on(D("2026-01-26"))  # breach date 8 days away
    on_2_feb = clock_on(t, ClockKind.CYPMH_4W, D("2026-02-02"))
    assert on_2_feb is not None and on_2_feb.waiting_days == 28 and on_2_feb.state is ClockState.RUNNING
    on_3_feb = clock_on(t, ClockKind.CYPMH_4W, D("2026-02-03"))
    assert on_3_feb is not None and on_3_feb.state is ClockState.BREACHED and on_3_feb.in_breach


def test_stop_on_the_target_day_is_met_and_the_day_after_is_breached() -> None:
    met = clock_on(timeline(("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("in_progress", "2026-02-02")),
                   ClockKind.CYPMH_4W, D("2026-06-01"))  # fmt: skip
    late = clock_on(timeline(("submitted", "2026-01-05"), ("accepted", "2026-01-06"), ("in_progress", "2026-02-03")),
                    ClockKind.CYPMH_4W, D("2026-06-01"))  # fmt: skip
    assert met is not None and (met.state, met.waiting_days, met.stopped_on) == (ClockState.MET, 28, D("2026-02-02"))
    assert late is not None and (late.state, late.waiting_days) == (ClockState.BREACHED, 29)


def test_family_hold_pauses_health_clocks_and_other_holds_do_not() -> None:
    family = timeline(
        ("submitted", "2026-01-05"),
        ("acknowledged", "2026-01-06"),
        ("on_hold", "2026-01-10", "family_unavailable"),
        ("accepted", "2026-01-20"),
        ("in_progress", "2026-02-10"),
    )
    paused = clock_on(family, ClockKind.CYPMH_4W, D("2026-01-15"))
    assert paused is not None and (paused.state, paused.waiting_days, paused.breach_date) == (
        ClockState.PAUSED,
        5,
        None,
    )
    resumed = clock_on(family, ClockKind.CYPMH_4W, D("2026-01-25"))
    assert resumed is not None and resumed.waiting_days == 10  # 20 days less 10 paused
    assert resumed.breach_date == D("2026-02-13")  # 5 Jan + 28 + 1 + 10
    done = clock_on(family, ClockKind.CYPMH_4W, D("2026-03-01"))
    assert done is not None and (done.state, done.waiting_days) == (ClockState.MET, 26)  # 36 - 10
    capacity = timeline(("submitted", "2026-01-05"), ("acknowledged", "2026-01-06"),
                        ("on_hold", "2026-01-10", "service_capacity"))  # fmt: skip
    running = clock_on(capacity, ClockKind.CYPMH_4W, D("2026-01-15"))
    assert running is not None and (running.state, running.waiting_days) == (ClockState.RUNNING, 10)


def test_pause_across_the_breach_date_moves_it() -> None:
    t = timeline(("submitted", "2026-01-05"), ("accepted", "2026-01-06"),
                 ("on_hold", "2026-01-30", "appointment_declined"), ("accepted", "2026-02-09"))  # fmt: skip
    during = clock_on(t, ClockKind.CYPMH_4W, D("2026-02-05"))  # the unpaused breach date 3 Feb has passed
    assert during is not None and during.state is ClockState.PAUSED and not during.in_breach
    after = clock_on(t, ClockKind.CYPMH_4W, D("2026-02-10"))
    assert after is not None and after.breach_date == D("2026-02-13")  # 3 Feb + 10 paused days
    assert after.state is ClockState.RUNNING and after.waiting_days == 26


def test_ehc_clocks_never_pause_and_exceptions_are_marked() -> None:
    t = timeline(
        ("submitted", "2026-01-05"),
        ("acknowledged", "2026-01-07"),
        ("on_hold", "2026-01-20", "school_closed_4_weeks"),
        ("accepted", "2026-02-20"),
        ("completed", "2026-05-20", None, "plan_issued"),
    )
    decision = clock_on(t, ClockKind.EHC_DECISION_6W, D("2026-12-31"))
    assert decision is not None
    assert (decision.state, decision.waiting_days, decision.exception) == (ClockState.BREACHED, 46, True)
    plan = clock_on(t, ClockKind.EHC_PLAN_20W, D("2026-12-31"))
    assert plan is not None and (plan.state, plan.waiting_days) == (ClockState.MET, 135)
    assert clock_on(t, ClockKind.EHC_NO_PLAN_16W, D("2026-12-31")) is None


def test_no_plan_starts_the_16_week_clock_and_removes_the_20_week_one() -> None:
    t = timeline(("submitted", "2026-01-05"), ("accepted", "2026-02-10"), ("completed", "2026-05-01", None, "no_plan"))
    before = clock_on(t, ClockKind.EHC_PLAN_20W, D("2026-04-30"))
    assert before is not None and before.state is ClockState.RUNNING
    assert clock_on(t, ClockKind.EHC_NO_PLAN_16W, D("2026-04-30")) is None
    assert clock_on(t, ClockKind.EHC_PLAN_20W, D("2026-05-01")) is None
    notice = clock_on(t, ClockKind.EHC_NO_PLAN_16W, D("2026-05-01"))
    assert notice is not None and (notice.state, notice.waiting_days) == (ClockState.BREACHED, 116)


@pytest.mark.parametrize("ending", ["rejected", "withdrawn", "handed_off"])
def test_ending_before_the_stop_is_neither_met_nor_breached(ending: str) -> None:
    t = timeline(("submitted", "2026-01-05"), (ending, "2026-03-05"))
    clock = clock_on(t, ClockKind.CYPMH_4W, D("2026-06-01"))
    assert clock is not None and clock.state is ClockState.STOPPED and not clock.stopped


def test_rejection_is_the_ehc_decision_not_to_assess() -> None:
    t = timeline(("submitted", "2026-01-05"), ("rejected", "2026-02-10", "threshold_not_met"))
    decision = clock_on(t, ClockKind.EHC_DECISION_6W, D("2026-06-01"))
    assert decision is not None and (decision.state, decision.waiting_days) == (ClockState.MET, 36)
    plan = clock_on(t, ClockKind.EHC_PLAN_20W, D("2026-06-01"))
    assert plan is not None and plan.state is ClockState.STOPPED


def test_targets_follow_urgency_and_service() -> None:
    urgent = timeline(("submitted", "2026-01-05"), urgency="urgent")
    ed = clock_on(urgent, ClockKind.CYPMH_ED, D("2026-01-06"))
    assert ed is not None and ed.target == 7 and ed.breach_date == D("2026-01-13")
    crisis = clock_on(urgent, ClockKind.CYPMH_CRISIS, D("2026-01-05"))
    assert crisis is not None and crisis.breach_date == D("2026-01-07")
    assert clock_on(urgent, ClockKind.SERVICE_TARGET, D("2026-01-06")) is None
    custom = clock_on(urgent, ClockKind.SERVICE_TARGET, D("2026-01-06"), service_target=42)
    assert custom is not None and custom.target == 42


def test_a_clock_as_it_stood_on_a_past_date() -> None:
    t = timeline(("submitted", "2026-01-05"), ("accepted", "2026-01-10"), ("in_progress", "2026-03-01"))
    then = clock_on(t, ClockKind.CYPMH_4W, D("2026-01-20"))
    assert then is not None and (then.state, then.waiting_days) == (ClockState.RUNNING, 15)
    assert clock_on(t, ClockKind.CYPMH_4W, D("2026-01-04")) is None


def test_business_dates_are_london_dates() -> None:
    assert business_date(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == D("2026-07-01")  # BST
    assert business_date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == D("2026-12-31")  # GMT


def test_a_reading_is_a_clock_without_its_referral_and_kind() -> None:
    """``clock_on`` builds its ``Clock`` from a ``ClockReading`` by position: the fields must line up."""
    assert tuple(f.name for f in fields(Clock))[2:] == ClockReading._fields
