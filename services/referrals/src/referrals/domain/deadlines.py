"""The deadline of a referral, told to a family in plain English (reading age about 9 to 11).

The clocks are waitlists' (``uk.send.waitlist.clocks_updated.v1``): this service never works one out. Each
clock comes with its state as of the referral's newest change and the first day it would be late (its breach
date); the deadline a family is shown is the day before, the last day within the target. Whether a clock still
waiting is on track is today against that date. Pure Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class ClockState:
    """One clock of a referral, as waitlists last told it."""

    clock: (
        str  # ehc_decision_6w, ehc_no_plan_16w, ehc_plan_20w, rtt_18w, cypmh_4w, cypmh_ed, cypmh_crisis, service_target
    )
    target_days: int
    start_date: date
    state: str  # running, paused, met, late, ended
    breach_date: date | None = None
    stopped_on: date | None = None
    exception: bool = False


@dataclass(frozen=True, slots=True)
class ReferralClocks:
    """A referral's clocks, derived by waitlists from the referral's versions up to ``referral_version``."""

    referral_id: str
    referral_version: int
    service_id: str
    clocks: tuple[ClockState, ...]


class DeadlineStatus(StrEnum):
    ON_TRACK = "on_track"  # still to happen, and today is on or before the deadline
    LATE = "late"  # past the deadline, still to happen or done late
    PAUSED = "paused"  # the wait is paused (a family hold), so there is no date yet
    MET = "met"  # done on time
    ENDED = "ended"  # the referral ended before it happened: nothing to say


@dataclass(frozen=True, slots=True)
class Deadline:
    clock: str
    status: DeadlineStatus
    due: date | None  # the last day within the target
    sentence: str | None  # None: nothing to tell the family

    @property
    def on_track(self) -> bool | None:
        """True on track, False late, None where neither applies (paused, done on time, ended)."""
        return {DeadlineStatus.ON_TRACK: True, DeadlineStatus.LATE: False}.get(self.status)


@dataclass(frozen=True, slots=True)
class _Words:
    must: str  # ... by <date>.
    not_yet: str  # ... . This is late.
    done: str  # ... on time. / ... on <date>. This was late.


_WORDS = {
    "ehc_decision_6w": _Words(
        "The local authority must decide whether to assess your child",
        "The local authority has not decided yet whether to assess your child",
        "The local authority decided whether to assess your child",
    ),
    "ehc_plan_20w": _Words(
        "The local authority must send you the final EHC plan",
        "The local authority has not sent you the final EHC plan yet",
        "The local authority sent you the final EHC plan",
    ),
    "ehc_no_plan_16w": _Words(
        "The local authority must tell you if it will not make an EHC plan",
        "The local authority has not told you yet if it will make an EHC plan",
        "The local authority told you it will not make an EHC plan",
    ),
    "cypmh_4w": _Words("Support should start", "Support has not started yet", "Support started"),
    "rtt_18w": _Words("Treatment should start", "Treatment has not started yet", "Treatment started"),
    "cypmh_ed": _Words("Treatment should start", "Treatment has not started yet", "Treatment started"),
    "cypmh_crisis": _Words("Your child should be seen", "Your child has not been seen yet", "Your child was seen"),
    "service_target": _Words(
        "The service aims to start helping your child",
        "The service has not started helping your child yet",
        "The service started helping your child",
    ),
}
_GENERAL = _Words("This should happen", "This has not happened yet", "This happened")
PAUSED_SENTENCE = (
    "The waiting time is paused while the service waits to hear from your family. It starts again when you are ready."
)
EXCEPTION_SENTENCE = "The law lets this date move in some cases, and that may happen here."


def spoken_date(day: date, today: date) -> str:
    """``Tuesday 3 March``; with the year when it is not this year (``Tuesday 3 March 2027``)."""
    text = f"{day:%A} {day.day} {day:%B}"
    return text if day.year == today.year else f"{text} {day.year}"


def deadline(clock: ClockState, today: date) -> Deadline:
    """What to tell the family about one clock on ``today`` (the date in England)."""
    words = _WORDS.get(clock.clock, _GENERAL)
    due = clock.breach_date - timedelta(days=1) if clock.breach_date is not None else None
    when = spoken_date(due, today) if due is not None else None
    if clock.state == "ended":
        return Deadline(clock.clock, DeadlineStatus.ENDED, None, None)
    if clock.state == "met":
        return Deadline(clock.clock, DeadlineStatus.MET, due, f"{words.done} on time.")
    if clock.stopped_on is not None:  # stopped late
        late_by = f" It should have happened by {when}." if when else ""
        stopped = spoken_date(clock.stopped_on, today)
        return Deadline(clock.clock, DeadlineStatus.LATE, due, f"{words.done} on {stopped}. This was late.{late_by}")
    if clock.state == "paused" or due is None:
        return Deadline(clock.clock, DeadlineStatus.PAUSED, None, PAUSED_SENTENCE if clock.state == "paused" else None)
    extra = f" {EXCEPTION_SENTENCE}" if clock.exception else ""
    if clock.state == "late" or today > due:
        return Deadline(
            clock.clock,
            DeadlineStatus.LATE,
            due,
            f"{words.not_yet}. This is late. It should have happened by {when}.{extra}",
        )
    return Deadline(clock.clock, DeadlineStatus.ON_TRACK, due, f"{words.must} by {when}.{extra}")


def deadlines(clocks: Sequence[ClockState], today: date) -> list[Deadline]:
    """Every clock's deadline with something to tell the family, in the order given."""
    return [found for clock in clocks if (found := deadline(clock, today)).sentence is not None]


def current_deadline(clocks: Sequence[ClockState], today: date) -> Deadline | None:
    """The deadline that applies now: the first clock still to happen (on track, late or paused); else the last
    one done (on time or late); None if there is nothing to tell."""
    found = deadlines(clocks, today)
    waiting = [d for d in found if d.status in (DeadlineStatus.ON_TRACK, DeadlineStatus.PAUSED)
               or (d.status is DeadlineStatus.LATE and not _stopped(clocks, d.clock))]  # fmt: skip
    if waiting:
        return waiting[0]
    return found[-1] if found else None


def _stopped(clocks: Sequence[ClockState], kind: str) -> bool:
    return any(c.clock == kind and c.stopped_on is not None for c in clocks)
