"""Backtest of predicted waits: what the estimate for a past ``as_of`` said, against what then happened to the
children referred in the weeks after it. Pure Python.

For each child of the cohort (submitted in the ``cohort_weeks`` after ``as_of``), looked at on ``observed_on``:

- started within the predicted p90: a hit; started later, or still without support past the p90: a miss;
- seen for less than the p90 (still waiting, or closed without support, before it): not yet known, left out
  (the estimate is of the wait to support; a closure is censoring there too), and counted as ``undetermined``.

The same for the median (about half should start within it), and the error of the median: the median over the
children who started of |days to start - predicted median|.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from waitlists.domain.waits import ReferralOutcome

Measure = Callable[[ReferralOutcome, date], tuple[int, bool]]


@dataclass
class Score:
    """Hits and misses of one prediction, or of many added up."""

    within_p90: int = 0
    beyond_p90: int = 0
    within_median: int = 0
    beyond_median: int = 0
    undetermined: int = 0
    errors: dict[int, int] = field(default_factory=dict)  # |days - predicted median| -> how many

    def add(self, other: Score) -> None:
        self.within_p90 += other.within_p90
        self.beyond_p90 += other.beyond_p90
        self.within_median += other.within_median
        self.beyond_median += other.beyond_median
        self.undetermined += other.undetermined
        for error, n in other.errors.items():
            self.errors[error] = self.errors.get(error, 0) + n

    @property
    def judged(self) -> int:
        return self.within_p90 + self.beyond_p90

    @property
    def calibration_p90(self) -> float | None:
        return round(self.within_p90 / self.judged, 4) if self.judged else None

    @property
    def share_within_median(self) -> float | None:
        judged = self.within_median + self.beyond_median
        return round(self.within_median / judged, 4) if judged else None

    @property
    def median_abs_error_days(self) -> float | None:
        """The median of |days to start - predicted median| over the children who started (lower median)."""
        total = sum(self.errors.values())
        if not total:
            return None
        seen = 0
        for error in sorted(self.errors):
            seen += self.errors[error]
            if 2 * seen >= total:
                return float(error)
        raise AssertionError("unreachable")


def _side(days: int, event: bool, bound: int) -> bool | None:
    """Whether it came within ``bound`` days (True), did not (False), or cannot be told yet (None)."""
    if event:
        return days <= bound
    return False if days > bound else None


def score(
    cohort: Iterable[ReferralOutcome], observed_on: date, measure: Measure, *, median: int | None, p90: int | None
) -> Score:
    """How the predicted median and p90 fared for ``cohort``, as seen on ``observed_on``. A prediction the curve
    never reached (None) scores nothing."""
    found = Score()
    if p90 is None:
        return found
    for r in cohort:
        days, event = measure(r, observed_on)
        side = _side(days, event, p90)
        if side is None:
            found.undetermined += r.n
        elif side:
            found.within_p90 += r.n
        else:
            found.beyond_p90 += r.n
        if median is not None:
            half = _side(days, event, median)
            if half is True:
                found.within_median += r.n
            elif half is False:
                found.beyond_median += r.n
            if event:
                error = abs(days - median)
                found.errors[error] = found.errors.get(error, 0) + r.n
    return found
