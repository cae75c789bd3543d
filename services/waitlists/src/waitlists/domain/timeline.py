"""A referral's history as the waitlists service sees it: coded status changes on business dates.

Everything here is pure Python and works on calendar dates in Europe/London (brief §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from send_shared.events.schemas import ReferralStatus

Status = ReferralStatus  # a referral's statuses, as the referrals service publishes them
# The members the rules compare with, as module constants: looking a member up on its enum costs about 75 ns in
# Python 3.11, and a rebuild compares statuses tens of millions of times.
SUBMITTED, ACCEPTED, REJECTED, IN_PROGRESS = Status.SUBMITTED, Status.ACCEPTED, Status.REJECTED, Status.IN_PROGRESS
ON_HOLD, COMPLETED, ENTERED_IN_ERROR = Status.ON_HOLD, Status.COMPLETED, Status.ENTERED_IN_ERROR
LONDON = ZoneInfo("Europe/London")

WAITING = frozenset({Status.SUBMITTED, Status.ACKNOWLEDGED, Status.ACCEPTED, Status.SCHEDULED, Status.ON_HOLD})
FINAL = frozenset({Status.REJECTED, Status.HANDED_OFF, Status.WITHDRAWN, Status.COMPLETED, Status.ENTERED_IN_ERROR})
CLOSED_BEFORE_SUPPORT = frozenset({Status.REJECTED, Status.WITHDRAWN, Status.HANDED_OFF})
FAMILY_HOLDS = frozenset({"family_unavailable", "appointment_declined"})
EHC_EXCEPTIONS = frozenset(
    {
        "school_closed_4_weeks",
        "child_or_parent_away_4_weeks",
        "exceptional_personal_circumstances",
        "missed_appointment_no_notice",
    }
)


# Business dates the projection counts with. Well inside what date arithmetic holds: a clock's breach
# date lies its target past its start, and open-ended facts end on date.max.
EARLIEST_BUSINESS_DATE = date(1900, 1, 1)
LATEST_BUSINESS_DATE = date(2999, 12, 31)
_MAX_ORDINAL = date.max.toordinal()


class DateOutOfRange(ValueError):
    """A business time outside the dates the projection counts with (say year 1 or 9999)."""


def business_date(moment: datetime) -> date:
    """The calendar date in England of a business time; ``DateOutOfRange`` outside
    ``EARLIEST_BUSINESS_DATE`` to ``LATEST_BUSINESS_DATE``."""
    try:
        day = moment.astimezone(LONDON).date()
    except (OverflowError, ValueError) as exc:  # year 1 at 00:00 UTC is year 0 in London (LMT -0:01:15)
        raise DateOutOfRange(f"{moment.isoformat()} has no date in England") from exc
    if not EARLIEST_BUSINESS_DATE <= day <= LATEST_BUSINESS_DATE:
        raise DateOutOfRange(
            f"{day.isoformat()} is outside {EARLIEST_BUSINESS_DATE.isoformat()} to {LATEST_BUSINESS_DATE.isoformat()}"
        )
    return day


def london_today() -> date:
    """Today's date in England, the date every figure and alert is for by default."""
    return datetime.now(LONDON).date()


def add_days(day: date, days: int) -> date:
    """``day`` plus ``days``, held at ``date.min`` or ``date.max`` rather than overflowing: a date past
    the calendar's end (a huge service target, say) is one that never comes."""
    ordinal = day.toordinal() + days  # by ordinal: a third of the cost of adding a timedelta, on every fact
    if ordinal > _MAX_ORDINAL:
        return date.max
    return date.fromordinal(ordinal) if ordinal >= 1 else date.min


@dataclass(frozen=True, slots=True)
class StatusChange:
    version: int
    status: Status
    on: date
    reason_code: str | None = None
    outcome_code: str | None = None


class Timeline(NamedTuple):
    """One referral at one service, with every change known so far, ordered by version. A named tuple, not a frozen
    dataclass: a rebuild makes one for each referral of a child's journey for every referral of it, and a frozen
    dataclass's __init__ (each field set through object.__setattr__) costs five times a tuple's."""

    referral_id: str
    child_ref: str
    service_id: str
    urgency: str
    changes: tuple[StatusChange, ...] = ()

    @classmethod
    def of(cls, referral_id: str, child_ref: str, service_id: str, urgency: str,
           changes: Sequence[StatusChange]) -> Timeline:  # fmt: skip
        return cls(referral_id, child_ref, service_id, urgency, tuple(sorted(changes, key=lambda c: c.version)))

    @property
    def in_error(self) -> bool:
        """Recorded by mistake: out of every figure for every date (the brief's one deliberate exception)."""
        # A list, not a generator: a rebuild asks this millions of times.
        return ENTERED_IN_ERROR in [c.status for c in self.changes]

    @property
    def submitted_on(self) -> date | None:
        first = self.changes[0] if self.changes else None
        return first.on if first is not None and first.status == SUBMITTED else None

    def known_on(self, day: date) -> tuple[StatusChange, ...]:
        """The changes that had happened by the end of ``day`` (business time)."""
        return tuple([c for c in self.changes if c.on <= day])

    def first_final(self) -> StatusChange | None:
        return next((c for c in self.changes if c.status in FINAL and c.status != ENTERED_IN_ERROR), None)

    def reached(self, status: Status, by: date | None = None) -> StatusChange | None:
        return next((c for c in self.changes if c.status == status and (by is None or c.on <= by)), None)


def paused_days(known: Sequence[StatusChange], day: date) -> int:
    """Days spent on a family-initiated hold before ``day``, from the changes known by then."""
    total = 0
    since: date | None = None
    for change in known:
        family_hold = change.status == ON_HOLD and change.reason_code in FAMILY_HOLDS
        if since is not None and not family_hold:
            total += (change.on - since).days
            since = None
        if family_hold and since is None:
            since = change.on
    return total + ((day - since).days if since is not None else 0)


def waiting_days(submitted_on: date, known: Sequence[StatusChange], day: date, pauses: bool) -> int:
    """Days waited by ``day`` (``known``: the changes known by then): from submission, less family-initiated holds
    where the service's clocks pause."""
    return (day - submitted_on).days - (paused_days(known, day) if pauses else 0)


def date_after(day: date, days: int) -> date | None:
    """``day`` plus ``days``; None past the calendar's end (a date that never comes), ``date.min``
    before its start."""
    later = add_days(day, days)
    return None if later == date.max and (date.max - day).days < days else later
