"""Waiting-time clocks and statutory deadlines (brief §4, "Precise rules").

- Waiting days on D = D - start - paused days before D; completed weeks = waiting days // 7.
- A clock with target T is met when it stops with waiting days <= T, breached from the first
  date with waiting days > T: its breach date, start + T + 1 + the days paused before it. A hold
  that starts after that date does not move it, and a clock that breached stays breached while
  paused (a hold never hides a breach). A clock paused before its breach date has none: it cannot
  breach while paused. Nor has one whose date is past the calendar's end: it never comes.
- RTT, CYPMH and service-defined clocks stop at in_progress, or at completed before it (a
  non-treatment clock stop, as in the NHS RTT rules): met or breached by the waiting days then.
- Health and service-defined clocks pause while on hold for a family-initiated reason; EHC
  clocks never pause, and a hold for a statutory exception dated on or before the clock's stop
  (the same calendar day counts, whatever order the moves were recorded in) marks the case as an
  exception.
- A clock ends, neither met nor breached, at rejected, withdrawn, handed_off or
  entered_in_error before its own stop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import NamedTuple

from waitlists.domain.timeline import (
    ACCEPTED,
    COMPLETED,
    EHC_EXCEPTIONS,
    FAMILY_HOLDS,
    IN_PROGRESS,
    ON_HOLD,
    REJECTED,
    Status,
    StatusChange,
    Timeline,
    add_days,
    date_after,
)

IMMINENT_DAYS = 7


class ClockKind(StrEnum):
    EHC_DECISION_6W = "ehc_decision_6w"
    EHC_NO_PLAN_16W = "ehc_no_plan_16w"
    EHC_PLAN_20W = "ehc_plan_20w"
    RTT_18W = "rtt_18w"
    CYPMH_4W = "cypmh_4w"
    CYPMH_ED = "cypmh_ed"
    CYPMH_CRISIS = "cypmh_crisis"
    SERVICE_TARGET = "service_target"

    @property
    def is_ehc(self) -> bool:
        return self in _EHC_KINDS

    @property
    def is_statutory(self) -> bool:
        return self is not ClockKind.SERVICE_TARGET


_EHC_KINDS = frozenset(kind for kind in ClockKind if kind.value.startswith("ehc_"))


@dataclass(frozen=True, slots=True)
class ServiceClocks:
    """The clocks a service runs, and its own target for a service-defined clock."""

    clocks: tuple[ClockKind, ...]
    target_days: int | None = None

    @classmethod
    def named(cls, names: Iterable[str], target_days: int | None) -> ServiceClocks:
        """From the directory's clock names; a name this version does not know is left out."""
        return cls(tuple(ClockKind(name) for name in names if name in _KINDS), target_days)

    @property
    def pauses(self) -> bool:
        return not any(kind.is_ehc for kind in self.clocks)


_KINDS = frozenset(kind.value for kind in ClockKind)


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # on a family hold before its breach date
    MET = "met"
    BREACHED = "breached"  # stopped late, or past its breach date and still waiting (running or paused)
    STOPPED = "stopped"  # ended before its own stop: neither met nor breached


_ENDING = frozenset({Status.REJECTED, Status.WITHDRAWN, Status.HANDED_OFF, Status.ENTERED_IN_ERROR})
_DECIDED = frozenset({ACCEPTED, REJECTED})
_TREATED = frozenset({IN_PROGRESS, COMPLETED})  # support started, or completed before it
_FIXED_TARGETS = {
    ClockKind.EHC_DECISION_6W: 42,
    ClockKind.EHC_NO_PLAN_16W: 112,
    ClockKind.EHC_PLAN_20W: 140,
    ClockKind.RTT_18W: 126,
    ClockKind.CYPMH_4W: 28,
}


def target_days(kind: ClockKind, urgency: str, service_target: int | None) -> int | None:
    if kind in _FIXED_TARGETS:
        return _FIXED_TARGETS[kind]
    if kind is ClockKind.CYPMH_ED:
        return 7 if urgency in ("urgent", "very_urgent") else 28
    if kind is ClockKind.CYPMH_CRISIS:
        # 24 hours for urgent; 4 hours for very urgent, which on calendar dates means the same day.
        return 0 if urgency == "very_urgent" else 1
    return service_target


@dataclass(frozen=True, slots=True)
class Clock:
    referral_id: str
    kind: ClockKind
    target: int
    start: date
    state: ClockState
    waiting_days: int
    stopped_on: date | None
    breach_date: date | None  # the first day over the target, for a clock still waiting (past or coming)
    exception: bool
    paused: bool = False  # on a family hold on the day (state PAUSED, or BREACHED if it breached first)
    breached_on: date | None = None  # the day it breached, if it has by the day (stopped late or waiting)

    @property
    def stopped(self) -> bool:
        return self.state in (ClockState.MET, ClockState.BREACHED) and self.stopped_on is not None

    @property
    def in_breach(self) -> bool:
        return self.state is ClockState.BREACHED

    def imminent_on(self, day: date, lead_days: int = IMMINENT_DAYS) -> bool:
        return (
            self.state is ClockState.RUNNING
            and self.breach_date is not None
            and day < self.breach_date <= add_days(day, lead_days)
        )


def _stops(kind: ClockKind, change: StatusChange) -> bool:
    if kind is ClockKind.EHC_DECISION_6W:
        return change.status in _DECIDED
    if kind is ClockKind.EHC_PLAN_20W:
        return change.status == COMPLETED and change.outcome_code == "plan_issued"
    if kind is ClockKind.EHC_NO_PLAN_16W:
        return change.status == COMPLETED and change.outcome_code == "no_plan"
    # Treatment or support started, or completed before it: a non-treatment clock stop.
    return change.status in _TREATED


def _applies(kind: ClockKind, known: tuple[StatusChange, ...]) -> bool:
    if kind is not ClockKind.EHC_NO_PLAN_16W and kind is not ClockKind.EHC_PLAN_20W:
        return True
    no_plan = any(c.status == COMPLETED and c.outcome_code == "no_plan" for c in known)
    return no_plan if kind is ClockKind.EHC_NO_PLAN_16W else not no_plan


def _exception(kind: ClockKind, known: tuple[StatusChange, ...], until: date | None) -> bool:
    """An EHC clock with a statutory exception hold dated on or before its stop (any, while it runs)."""
    return kind.is_ehc and any(
        c.status == ON_HOLD and c.reason_code in EHC_EXCEPTIONS and (until is None or c.on <= until) for c in known
    )


class ClockReading(NamedTuple):
    """A clock on a day, all but its referral and kind (``Clock``'s other fields, in order): a tuple, cheap to make
    where facts are derived at every change date of millions of referrals."""

    target: int
    start: date
    state: ClockState
    waiting_days: int
    stopped_on: date | None
    breach_date: date | None
    exception: bool
    paused: bool = False
    breached_on: date | None = None


def clock_on(timeline: Timeline, kind: ClockKind, day: date, service_target: int | None = None) -> Clock | None:
    """The clock as it stood at the end of ``day``; None if it does not (yet) exist then."""
    reading = read_clock(timeline, kind, day, service_target)
    return None if reading is None else Clock(timeline.referral_id, kind, *reading)


def read_clock(
    timeline: Timeline, kind: ClockKind, day: date, service_target: int | None = None
) -> ClockReading | None:
    """``clock_on``'s clock, as a ``ClockReading``."""
    target = target_days(kind, timeline.urgency, service_target)
    start = timeline.submitted_on
    known = timeline.known_on(day)
    if target is None or start is None or not known or not _applies(kind, known):
        return None
    pauses = not kind.is_ehc
    paused_days = 0
    paused_since: date | None = None
    breached_on: date | None = None  # set once the running clock has passed its target

    def breach_by(on: date) -> date | None:
        """The breach date, if the clock (running up to ``on``) has breached by then; it never moves after."""
        if breached_on is not None:
            return breached_on
        due = date_after(start, target + 1 + paused_days)
        return due if due is not None and due <= on else None

    for change in known[1:]:
        family_hold = pauses and change.status == ON_HOLD and change.reason_code in FAMILY_HOLDS
        if paused_since is not None and not family_hold:
            paused_days += (change.on - paused_since).days
            paused_since = None
        elif paused_since is None and family_hold:
            breached_on = breach_by(change.on)
            paused_since = change.on
        if _stops(kind, change) or change.status in _ENDING:
            waiting = (change.on - start).days - paused_days
            exception = _exception(kind, known, change.on)
            if change.status in _ENDING and not _stops(kind, change):
                state, breached_on = ClockState.STOPPED, None
            elif waiting <= target:
                state, breached_on = ClockState.MET, None
            else:
                state, breached_on = ClockState.BREACHED, breach_by(change.on)
            return ClockReading(target, start, state, waiting, change.on, None, exception, breached_on=breached_on)
    exception = _exception(kind, known, None)
    if paused_since is not None:
        waiting = (paused_since - start).days - paused_days
        state = ClockState.PAUSED if breached_on is None else ClockState.BREACHED
        return ClockReading(target, start, state, waiting, None, breached_on, exception, paused=True,
                            breached_on=breached_on)  # fmt: skip
    waiting = (day - start).days - paused_days
    breach_date = breached_on or date_after(start, target + 1 + paused_days)  # None: after the calendar ends
    breached_on = breach_by(day)
    state = ClockState.BREACHED if breached_on is not None else ClockState.RUNNING
    return ClockReading(target, start, state, waiting, None, breach_date, exception, breached_on=breached_on)
