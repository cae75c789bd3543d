"""Referral histories that follow the referral state machine (brief §3), as the oracle's plain records,
for property and equivalence tests. Tests convert them to the production's timelines (``shapes``)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from hypothesis import strategies as st

from .oracle import EHC_CLOCKS, EHC_EXCEPTION_REASONS, FAMILY_REASONS, Change, Referral, Service

SERVICES = {
    "camhs": Service(("cypmh_4w", "cypmh_ed")),
    "ehc": Service(("ehc_decision_6w", "ehc_no_plan_16w", "ehc_plan_20w")),
    "slt": Service(("service_target",), target_days=56),
    "rtt": Service(("rtt_18w",)),
    "crisis": Service(("cypmh_crisis",)),
}
EPOCH = date(2025, 1, 1)
FINAL = frozenset({"rejected", "handed_off", "withdrawn", "completed"})
# The referral state machine's moves (brief §3). A hold returns to the status it left or moves to any
# status that one may move to, a hold among them (to change its reason); any status, final ones
# included, may move to entered_in_error.
MOVES = {
    "submitted": ("acknowledged", "accepted", "rejected", "handed_off", "withdrawn"),
    "acknowledged": ("accepted", "rejected", "on_hold", "handed_off", "withdrawn"),
    "accepted": ("scheduled", "in_progress", "on_hold", "completed", "handed_off", "withdrawn"),
    "scheduled": ("scheduled", "in_progress", "on_hold", "handed_off", "withdrawn"),
    "in_progress": ("on_hold", "completed", "handed_off", "withdrawn"),
}
HOLD_REASONS = (
    "family_unavailable",
    "appointment_declined",
    "school_closed_4_weeks",
    "child_or_parent_away_4_weeks",
    "exceptional_personal_circumstances",
    "missed_appointment_no_notice",
    "awaiting_information",
    "service_capacity",
)
REJECTION_REASONS = ("threshold_not_met", "outside_remit", "insufficient_information", "needs_met_elsewhere", None)
OUTCOMES = ("plan_issued", "no_plan", "support_completed", "discharged", None)

change_step = st.tuples(
    st.integers(0, 99),
    st.one_of(st.just(0), st.integers(1, 60)),  # moves on the same date half the time
    st.one_of(st.sampled_from(sorted(FAMILY_REASONS)), st.sampled_from(HOLD_REASONS)),  # pauses half the time
    st.sampled_from(REJECTION_REASONS),
    st.sampled_from(OUTCOMES),
)
referral = st.tuples(
    st.sampled_from(("c1", "c2", "c3")),
    st.sampled_from(sorted(SERVICES)),
    st.sampled_from(("routine", "urgent", "very_urgent")),
    st.integers(0, 500),
    st.lists(change_step, max_size=7),
    st.sampled_from((True, True, True, False)),  # False: the history's beginning is missing
)
# Reporting dates near the histories' own dates, where figures change: the date of one change (any
# referral's, counted round all of them) moved by a few days either way.
reporting_day = st.tuples(st.integers(0, 99), st.integers(-3, 45))


def near(referrals: list[Referral], anchor: tuple[int, int]) -> date:
    """The reporting date ``anchor`` (from ``reporting_day``) picks for these histories."""
    pick, offset = anchor
    days = sorted({c.on for r in referrals for c in r.changes})
    return days[pick % len(days)] + timedelta(days=offset)


def build(index: int, spec: tuple) -> Referral:  # type: ignore[type-arg]
    """The history ``spec`` draws."""
    child, service, urgency, start, steps, submitted = spec
    referral_id = f"r{index}"
    ehc = any(k in EHC_CLOCKS for k in SERVICES[service].clocks)
    day = EPOCH + timedelta(days=start)
    changes = [Change("submitted" if submitted else "acknowledged", day)]
    status, held_from = changes[0].status, ""
    for pick, gap, hold_reason, rejection_reason, outcome in steps:
        if status == "entered_in_error":
            break
        if status in FINAL:
            if pick % 4:
                break
            new = "entered_in_error"
        elif pick >= 97:
            new = "entered_in_error"
        else:
            moves = (held_from, *MOVES[held_from]) if status == "on_hold" else MOVES[status]
            new = (
                "on_hold" if pick < 25 and "on_hold" in moves else moves[pick % len(moves)]
            )  # holds are where rules differ
        day += timedelta(days=gap)
        if ehc and hold_reason in FAMILY_REASONS:  # EHC clocks never pause: exceptions are what counts there
            hold_reason = sorted(EHC_EXCEPTION_REASONS)[len(hold_reason) % len(EHC_EXCEPTION_REASONS)]
        reason = hold_reason if new == "on_hold" else rejection_reason if new == "rejected" else None
        changes.append(Change(new, day, reason, outcome if new == "completed" else None))
        if new != "on_hold":
            held_from = ""
        elif status != "on_hold":
            held_from = status
        status = new
    return Referral(referral_id, child, service, urgency, tuple(changes))


def random_specs(rng: random.Random, count: int, children: int) -> list[tuple]:  # type: ignore[type-arg]
    """The same shape of history as the ``referral`` strategy, drawn from a seeded generator."""
    return [
        (
            f"c{rng.randrange(children)}",
            rng.choice(sorted(SERVICES)),
            rng.choice(("routine", "urgent", "very_urgent")),
            rng.randrange(500),
            [
                (
                    rng.randrange(100),
                    0 if rng.random() < 0.3 else rng.randrange(1, 61),
                    rng.choice(sorted(FAMILY_REASONS)) if rng.random() < 0.4 else rng.choice(HOLD_REASONS),
                    rng.choice(REJECTION_REASONS),
                    rng.choice(OUTCOMES),
                )
                for _ in range(rng.randrange(8))
            ],
            True,
        )
        for _ in range(count)
    ]
