"""Date-ranged facts of one referral, derived from its timeline by the clock and waiting rules.

Every figure for a date D is a count over facts valid on D, so figures for any ``as_of`` come
from indexed range reads instead of replaying every timeline on each request.

Between two change dates a referral's status, holds and clocks are fixed; only the waiting
days grow, by one a day or not at all while on a family hold. So the rules, evaluated once on
each change date, give every fact for every date:

- a waiting spell: waiting on [valid_from, valid_to), with waiting days ``D - waiting_since``,
  or a constant ``paused_days`` while the clock is paused;
- a clock spell: a clock running (breach date fixed) or paused on [valid_from, valid_to); a clock
  paused after its breach date keeps that date, so it counts as breached while paused;
- a clock stop: met, late, or ended (neither), from its stop date on;
- the referral's outcome dates, and the handoff gap its closure opened.

Dates of one referral's changes never go backwards (the referrals service refuses a move
that precedes the one before), which is what lets a stop, once seen, stand for good.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from enum import StrEnum
from typing import NamedTuple, TypeVar

from waitlists.domain.clocks import ClockKind, ClockState, ServiceClocks, read_clock
from waitlists.domain.timeline import (
    ACCEPTED,
    CLOSED_BEFORE_SUPPORT,
    FAMILY_HOLDS,
    IN_PROGRESS,
    ON_HOLD,
    WAITING,
    Status,
    Timeline,
    add_days,
    waiting_days,
)

OPEN_END = date.max


class StopOutcome(StrEnum):
    MET = "met"
    LATE = "late"
    ENDED = "ended"  # rejected, withdrawn, handed off before its own stop


# The facts are named tuples, not frozen dataclasses: a rebuild makes several for every referral, and a frozen
# dataclass's __init__ sets each field through object.__setattr__ (five times a tuple's cost). Immutable all the same.
class StopCount(NamedTuple):
    """How many clocks of a kind stopped at a service on a day, with one outcome, exceptions or not."""

    service_id: str
    clock: ClockKind
    stopped_on: date
    outcome: StopOutcome
    exception: bool
    n: int


class WaitingSpell(NamedTuple):
    valid_from: date
    valid_to: date
    waiting_since: date | None  # waiting days on D: (D - waiting_since) while the clock runs
    paused_days: int | None  # ... or this constant while paused


class ClockSpell(NamedTuple):
    clock: ClockKind
    valid_from: date
    valid_to: date
    breach_on: date | None  # None while paused before the breach date (a breached clock keeps its date)
    exception: bool


class ClockStop(NamedTuple):
    clock: ClockKind
    stopped_on: date
    outcome: StopOutcome
    exception: bool


class Outcome(NamedTuple):
    submitted_on: date
    started_on: date | None
    closed_on: date | None
    closed_status: Status | None
    closed_reason: str | None
    before_support: bool


class HandoffGap(NamedTuple):
    opened_on: date
    closed_on: date  # OPEN_END until another service accepts the child


class ReferralFacts(NamedTuple):
    referral_id: str
    child_ref: str
    service_id: str
    outcome: Outcome
    waiting: tuple[WaitingSpell, ...] = ()
    clock_spells: tuple[ClockSpell, ...] = ()
    clock_stops: tuple[ClockStop, ...] = ()
    gap: HandoffGap | None = None


Intervals = list[tuple[date, date]]
Held = TypeVar("Held", tuple[date | None, int | None], tuple[ClockKind, date | None, bool])


def _intervals(timeline: Timeline) -> Intervals:
    """Each change date of the timeline to the next (the last to ``OPEN_END``): the rules are evaluated once on each."""
    days = sorted({c.on for c in timeline.changes})
    return list(zip(days, [*days[1:], OPEN_END], strict=True))


def waiting_spells(timeline: Timeline, intervals: Intervals, pauses: bool) -> tuple[WaitingSpell, ...]:
    submitted_on = timeline.submitted_on
    if submitted_on is None:
        return ()
    spells: list[tuple[date, date, tuple[date | None, int | None]]] = []
    for valid_from, valid_to in intervals:
        known = timeline.known_on(valid_from)  # never empty: each interval starts on a change's date
        last = known[-1]
        if last.status not in WAITING:
            continue
        waited = waiting_days(submitted_on, known, valid_from, pauses)
        if pauses and last.status == ON_HOLD and last.reason_code in FAMILY_HOLDS:
            spells.append((valid_from, valid_to, (None, waited)))
        else:
            spells.append((valid_from, valid_to, (add_days(valid_from, -waited), None)))
    return tuple(WaitingSpell(valid_from, valid_to, *held) for valid_from, valid_to, held in _merge(spells))


def clock_facts(
    timeline: Timeline, intervals: Intervals, kinds: Sequence[ClockKind], target_days: int | None
) -> tuple[tuple[ClockSpell, ...], tuple[ClockStop, ...]]:
    spells: list[tuple[date, date, tuple[ClockKind, date | None, bool]]] = []
    stops: list[ClockStop] = []
    for kind in kinds:
        for valid_from, valid_to in intervals:
            clock = read_clock(timeline, kind, valid_from, target_days)
            if clock is None:
                continue
            if clock.stopped_on is not None:  # a stop stands for good: nothing after it to look at
                outcome = {ClockState.MET: StopOutcome.MET, ClockState.BREACHED: StopOutcome.LATE}.get(
                    clock.state, StopOutcome.ENDED
                )
                stops.append(ClockStop(kind, clock.stopped_on, outcome, clock.exception))
                break
            spells.append((valid_from, valid_to, (kind, clock.breach_date, clock.exception)))
    merged = tuple(ClockSpell(clock, valid_from, valid_to, breach_on, exception)
                   for valid_from, valid_to, (clock, breach_on, exception) in _merge(spells))  # fmt: skip
    return merged, tuple(stops)


def outcome(timeline: Timeline) -> Outcome:
    assert timeline.submitted_on is not None
    started = timeline.reached(IN_PROGRESS)
    final = timeline.first_final()
    before_support = (
        final is not None
        and final.status in CLOSED_BEFORE_SUPPORT
        and timeline.reached(IN_PROGRESS, by=final.on) is None
    )
    return Outcome(
        submitted_on=timeline.submitted_on,
        started_on=started.on if started else None,
        closed_on=final.on if final else None,
        closed_status=final.status if final else None,
        closed_reason=final.reason_code if final else None,
        before_support=before_support,
    )


def handoff_gap(timeline: Timeline, journey: Sequence[Timeline]) -> HandoffGap | None:
    """From a rejection, withdrawal or hand-off to the first acceptance at another service, on a
    referral of the same child submitted on or after that day."""
    final = timeline.first_final()
    if final is None or final.status not in CLOSED_BEFORE_SUPPORT:
        return None
    acceptances = [
        accepted.on
        for other in journey
        if other.service_id != timeline.service_id
        and not other.in_error
        and other.submitted_on is not None
        and other.submitted_on >= final.on
        and (accepted := other.reached(ACCEPTED)) is not None
    ]
    return HandoffGap(final.on, min(acceptances, default=OPEN_END))


def derive(timeline: Timeline, service: ServiceClocks, journey: Sequence[Timeline]) -> ReferralFacts | None:
    """Every fact of one referral; None for a referral entered in error (out of every figure for every date)."""
    if timeline.in_error or timeline.submitted_on is None:
        return None
    intervals = _intervals(timeline)
    spells, stops = clock_facts(timeline, intervals, service.clocks, service.target_days)
    return ReferralFacts(
        referral_id=timeline.referral_id,
        child_ref=timeline.child_ref,
        service_id=timeline.service_id,
        outcome=outcome(timeline),
        waiting=waiting_spells(timeline, intervals, service.pauses),
        clock_spells=spells,
        clock_stops=stops,
        gap=handoff_gap(timeline, journey),
    )


def derive_journeys(
    journeys: Mapping[str, Sequence[Timeline]], clocks: Mapping[str, ServiceClocks]
) -> list[ReferralFacts]:
    """The facts of every referral of these children (journeys by child), each with its child's others."""
    found: list[ReferralFacts] = []
    for journey in journeys.values():
        for timeline in journey:
            facts = derive(timeline, clocks.get(timeline.service_id, ServiceClocks(())), journey)
            if facts is not None:
                found.append(facts)
    return found


def _merge(spells: list[tuple[date, date, Held]]) -> list[tuple[date, date, Held]]:
    """Joins back-to-back spells (valid from, valid to, what they hold) that hold the same (a move that changed nothing
    counted), before any is built."""
    merged: list[tuple[date, date, Held]] = []
    for valid_from, valid_to, held in spells:
        if merged and merged[-1][1] == valid_from and merged[-1][2] == held:
            merged[-1] = (merged[-1][0], valid_to, held)
        else:
            merged.append((valid_from, valid_to, held))
    return merged
