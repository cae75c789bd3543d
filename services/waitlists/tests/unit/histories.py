"""Referral histories that follow the referral state machine, for property and equivalence tests."""

from __future__ import annotations

import random
from datetime import date, timedelta

from hypothesis import strategies as st

from waitlists.domain.clocks import ClockKind, ServiceClocks
from waitlists.domain.timeline import StatusChange, Timeline

SERVICES = {
    "camhs": ServiceClocks((ClockKind.CYPMH_4W, ClockKind.CYPMH_ED)),
    "ehc": ServiceClocks((ClockKind.EHC_DECISION_6W, ClockKind.EHC_NO_PLAN_16W, ClockKind.EHC_PLAN_20W)),
    "slt": ServiceClocks((ClockKind.SERVICE_TARGET,), target_days=56),
    "rtt": ServiceClocks((ClockKind.RTT_18W,)),
    "crisis": ServiceClocks((ClockKind.CYPMH_CRISIS,)),
}
EPOCH = date(2025, 1, 1)
# The referral state machine's moves (brief §3); a hold returns to the status it left or moves on from it.
MOVES = {
    "submitted": ("acknowledged", "accepted", "rejected", "handed_off", "withdrawn"),
    "acknowledged": ("accepted", "rejected", "on_hold", "handed_off", "withdrawn"),
    "accepted": ("scheduled", "in_progress", "on_hold", "completed", "handed_off", "withdrawn"),
    "scheduled": ("scheduled", "in_progress", "on_hold", "handed_off", "withdrawn"),
    "in_progress": ("on_hold", "completed", "handed_off", "withdrawn"),
}
HOLD_REASONS = ("family_unavailable", "appointment_declined", "school_closed_4_weeks", "awaiting_information")
OUTCOMES = ("plan_issued", "no_plan", None)

change_step = st.tuples(
    st.integers(0, 99),
    st.integers(0, 60),
    st.sampled_from(HOLD_REASONS),
    st.sampled_from(OUTCOMES),
)
referral = st.tuples(
    st.sampled_from(("c1", "c2", "c3")),
    st.sampled_from(sorted(SERVICES)),
    st.sampled_from(("routine", "urgent", "very_urgent")),
    st.integers(0, 500),
    st.lists(change_step, max_size=6),
    st.booleans(),
)


def build(index: int, spec: tuple) -> Timeline:  # type: ignore[type-arg]
    child, service, urgency, start, steps, submitted = spec
    day = EPOCH + timedelta(days=start)
    changes = [StatusChange(1, "submitted" if submitted else "acknowledged", day)]
    status, held_from = changes[0].status, None
    for version, (pick, gap, reason, outcome) in enumerate(steps, start=2):
        if status not in MOVES and status != "on_hold":
            break
        if status == "on_hold":
            assert held_from is not None
            moves = (held_from, *(m for m in MOVES[held_from] if m != "on_hold"))
        else:
            moves = MOVES[status]
        status, held_from = ("entered_in_error", None) if pick == 99 else (moves[pick % len(moves)], status)
        day += timedelta(days=gap)
        changes.append(
            StatusChange(
                version,
                status,
                day,
                reason if status in ("on_hold", "rejected") else None,
                outcome if status == "completed" else None,
            )
        )
    return Timeline.of(f"r{index}", child, service, urgency, changes)


def random_specs(rng: random.Random, count: int, children: int) -> list[tuple]:  # type: ignore[type-arg]
    """The same shape of history as the ``referral`` strategy, drawn from a seeded generator."""
    return [
        (
            f"c{rng.randrange(children)}",
            rng.choice(sorted(SERVICES)),
            rng.choice(("routine", "urgent", "very_urgent")),
            rng.randrange(500),
            [
                (rng.randrange(100), rng.randrange(61), rng.choice(HOLD_REASONS), rng.choice(OUTCOMES))
                for _ in range(rng.randrange(7))
            ],
            True,
        )
        for _ in range(count)
    ]
