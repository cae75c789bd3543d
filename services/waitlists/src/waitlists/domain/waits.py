"""Predicted waits: what the recent referrals of a service say about how long a child referred now will wait.

For a service and ``as_of``, every referral submitted in the window (``window_weeks`` up to and including
``as_of``) is one observation, in days from its submission, of

- support starting (its first ``in_progress``): an event on that day if it came by ``as_of``; otherwise
  censored at ``as_of`` while it waits, or at its closure if it closed without support by ``as_of``;
- the service's first clock stopping met or late: an event on that day if by ``as_of``; censored at the stop
  of a clock that ended neither met nor late, at the closure, or at ``as_of``.

Closed without support (rejected, withdrawn, handed off, or completed with no ``in_progress``) is a competing
risk. Censoring it at the closure treats the child as one who would have waited on like those still waiting:
the conservative choice (leaving them out would shorten the estimate, counting them as started would shorten it
more). Only what had happened by ``as_of`` counts, so an estimate for a past day is the one that day would have
given; referrals entered in error are out of every figure (they have no facts at all).

Kaplan-Meier (``domain.survival``) turns the observations into the median and 90th percentile, with a band on
the latter. Below ``min_children`` referrals the estimate says there is not enough data and gives no figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from waitlists.domain.facts import StopOutcome
from waitlists.domain.stats import SMALL_NUMBER
from waitlists.domain.survival import Curve, kaplan_meier

DEFAULT_WINDOW_WEEKS = 26
DEFAULT_MIN_CHILDREN = 20


@dataclass(frozen=True, slots=True)
class WaitPolicy:
    """The settings an estimate is made with."""

    window_weeks: int = DEFAULT_WINDOW_WEEKS
    min_children: int = DEFAULT_MIN_CHILDREN


@dataclass(frozen=True, slots=True)
class ReferralOutcome:
    """What the fact tables hold of one referral for the estimate (``n`` referrals alike)."""

    submitted_on: date
    started_on: date | None
    closed_on: date | None
    stopped_on: date | None = None  # the service's first clock
    stop_outcome: StopOutcome | None = None
    n: int = 1


def window_start(as_of: date, window_weeks: int) -> date:
    """The first submission date in the window: ``window_weeks`` weeks ending on ``as_of``."""
    return as_of - timedelta(days=7 * window_weeks - 1)


def to_support(r: ReferralOutcome, as_of: date) -> tuple[int, bool]:
    if r.started_on is not None and r.started_on <= as_of:
        return (r.started_on - r.submitted_on).days, True
    if r.closed_on is not None and r.closed_on <= as_of:
        return (r.closed_on - r.submitted_on).days, False
    return (as_of - r.submitted_on).days, False


def to_clock_stop(r: ReferralOutcome, as_of: date) -> tuple[int, bool]:
    if r.stopped_on is not None and r.stopped_on <= as_of:
        return (r.stopped_on - r.submitted_on).days, r.stop_outcome in (StopOutcome.MET, StopOutcome.LATE)
    if r.closed_on is not None and r.closed_on <= as_of:
        return (r.closed_on - r.submitted_on).days, False
    return (as_of - r.submitted_on).days, False


@dataclass(frozen=True, slots=True)
class Quantiles:
    median_days: int | None
    p90_days: int | None
    p90_low_days: int | None
    p90_high_days: int | None

    @classmethod
    def of(cls, curve: Curve) -> Quantiles:
        low, high = curve.quantile_band(0.9)
        return cls(curve.quantile(0.5), curve.quantile(0.9), low, high)


NO_FIGURES = Quantiles(None, None, None, None)


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    service_id: str
    as_of: date
    window_weeks: int
    children: int
    enough_data: bool
    to_support: Quantiles
    to_clock_stop: Quantiles | None  # None for a service that runs no clock
    clock: str | None

    @property
    def window_start(self) -> date:
        return window_start(self.as_of, self.window_weeks)

    @property
    def children_shown(self) -> int | None:
        """The count as anyone outside the service's organisation may see it: 1 to 4 withheld."""
        return None if 0 < self.children < SMALL_NUMBER else self.children

    def fingerprint(self) -> tuple[object, ...]:
        """Everything an estimate says but the date it is for: a new one is sent only when this changes."""
        return (self.window_weeks, self.children_shown, self.enough_data, self.to_support, self.to_clock_stop)


def estimate(
    service_id: str,
    outcomes: Iterable[ReferralOutcome],
    as_of: date,
    *,
    clock: str | None,
    window_weeks: int = DEFAULT_WINDOW_WEEKS,
    min_children: int = DEFAULT_MIN_CHILDREN,
) -> WaitEstimate:
    """The estimate for ``service_id`` on ``as_of`` from its referrals' outcomes (those outside the window or
    submitted after ``as_of`` are left out here too)."""
    first = window_start(as_of, window_weeks)
    support: Counter[tuple[int, bool]] = Counter()
    stop: Counter[tuple[int, bool]] = Counter()
    for r in outcomes:
        if not first <= r.submitted_on <= as_of:
            continue
        support[to_support(r, as_of)] += r.n
        stop[to_clock_stop(r, as_of)] += r.n
    children = sum(support.values())
    enough = children >= min_children
    if not enough:
        return WaitEstimate(service_id, as_of, window_weeks, children, False, NO_FIGURES,
                            NO_FIGURES if clock else None, clock)  # fmt: skip
    return WaitEstimate(
        service_id, as_of, window_weeks, children, True, Quantiles.of(kaplan_meier(support)),
        Quantiles.of(kaplan_meier(stop)) if clock else None, clock,
    )  # fmt: skip
