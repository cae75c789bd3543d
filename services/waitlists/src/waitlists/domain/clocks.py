"""Waiting-time clocks and statutory deadlines (brief §4, "Precise rules").

- Waiting days on D = D - start - paused days before D; completed weeks = waiting days // 7.
- A clock with target T is met when it stops with waiting days <= T, breached from the first
  date with waiting days > T. Its breach date is start + T + 1 + paused days (none while paused,
  nor when that date is past the calendar's end: it never comes).
- Health and service-defined clocks pause while on hold for a family-initiated reason; EHC
  clocks never pause, and a hold for a statutory exception marks the case as an exception.
- A clock ends, neither met nor breached, at rejected, withdrawn, handed_off or
  entered_in_error before its own stop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from waitlists.domain.timeline import EHC_EXCEPTIONS, FAMILY_HOLDS, StatusChange, Timeline, add_days, date_after

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
        return self.value.startswith("ehc_")

    @property
    def is_statutory(self) -> bool:
        return self is not ClockKind.SERVICE_TARGET


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
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"  # stopped late, or still running past its breach date
    STOPPED = "stopped"  # ended before its own stop: neither met nor breached


_ENDING = frozenset({"rejected", "withdrawn", "handed_off", "entered_in_error"})
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
    breach_date: date | None
    exception: bool

    @property
    def stopped(self) -> bool:
        return self.state in (ClockState.MET, ClockState.BREACHED) and self.stopped_on is not None

    @property
    def in_breach(self) -> bool:
        return self.state is ClockState.BREACHED or (
            self.state is ClockState.PAUSED and self.waiting_days > self.target
        )

    def imminent_on(self, day: date, lead_days: int = IMMINENT_DAYS) -> bool:
        return (
            self.state is ClockState.RUNNING
            and self.breach_date is not None
            and day < self.breach_date <= add_days(day, lead_days)
        )


def _stops(kind: ClockKind, change: StatusChange) -> bool:
    if kind is ClockKind.EHC_DECISION_6W:
        return change.status in ("accepted", "rejected")
    if kind is ClockKind.EHC_PLAN_20W:
        return change.status == "completed" and change.outcome_code == "plan_issued"
    if kind is ClockKind.EHC_NO_PLAN_16W:
        return change.status == "completed" and change.outcome_code == "no_plan"
    return change.status == "in_progress"


def _applies(kind: ClockKind, known: tuple[StatusChange, ...]) -> bool:
    no_plan = any(c.status == "completed" and c.outcome_code == "no_plan" for c in known)
    if kind is ClockKind.EHC_NO_PLAN_16W:
        return no_plan
    if kind is ClockKind.EHC_PLAN_20W:
        return not no_plan
    return True


def clock_on(timeline: Timeline, kind: ClockKind, day: date, service_target: int | None = None) -> Clock | None:
    """The clock as it stood at the end of ``day``; None if it does not (yet) exist then."""
    target = target_days(kind, timeline.urgency, service_target)
    start = timeline.submitted_on
    known = timeline.known_on(day)
    if target is None or start is None or not known or not _applies(kind, known):
        return None
    pauses = not kind.is_ehc
    paused_days = 0
    paused_since: date | None = None
    exception = False
    for change in known[1:]:
        if paused_since is not None and not (change.status == "on_hold" and change.reason_code in FAMILY_HOLDS):
            paused_days += (change.on - paused_since).days
            paused_since = None
        if change.status == "on_hold":
            if kind.is_ehc and change.reason_code in EHC_EXCEPTIONS:
                exception = True
            if pauses and change.reason_code in FAMILY_HOLDS and paused_since is None:
                paused_since = change.on
        if _stops(kind, change):
            waiting = (change.on - start).days - paused_days
            state = ClockState.MET if waiting <= target else ClockState.BREACHED
            return Clock(timeline.referral_id, kind, target, start, state, waiting, change.on, None, exception)
        if change.status in _ENDING:
            waiting = (change.on - start).days - paused_days
            return Clock(
                timeline.referral_id, kind, target, start, ClockState.STOPPED, waiting, change.on, None, exception
            )
    if paused_since is not None:
        waiting = (paused_since - start).days - paused_days
        return Clock(timeline.referral_id, kind, target, start, ClockState.PAUSED, waiting, None, None, exception)
    waiting = (day - start).days - paused_days
    breach_date = date_after(start, target + 1 + paused_days)  # None: after the calendar ends
    state = ClockState.BREACHED if waiting > target else ClockState.RUNNING
    return Clock(timeline.referral_id, kind, target, start, state, waiting, None, breach_date, exception)
