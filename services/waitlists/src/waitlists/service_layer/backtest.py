"""Backtest of predicted waits over past dates: for each ``as_of`` from ``first`` to ``last`` every ``every_weeks``
weeks, every service's estimate on that day against what happened to the children referred to it in the
``cohort_weeks`` weeks after, as seen on ``observed_on``. Two reads per date, whatever the number of services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from waitlists.domain.backtest import Score, score
from waitlists.domain.waits import WaitPolicy, to_clock_stop, to_support
from waitlists.service_layer.unit_of_work import UnitOfWork
from waitlists.service_layer.waits import estimates_in


@dataclass
class Backtest:
    first: date
    last: date
    every_weeks: int
    cohort_weeks: int
    observed_on: date
    policy: WaitPolicy
    dates: int = 0
    estimates: int = 0  # services with enough data, summed over the dates
    without_p90: int = 0  # of those, how many never reached 90%
    to_support: Score = field(default_factory=Score)
    to_clock_stop: Score = field(default_factory=Score)

    def report(self) -> dict[str, Any]:
        def part(s: Score) -> dict[str, Any]:
            return {"children_judged": s.judged, "within_p90": s.within_p90, "calibration_p90": s.calibration_p90,
                    "share_within_median": s.share_within_median, "median_abs_error_days": s.median_abs_error_days,
                    "undetermined": s.undetermined}  # fmt: skip

        return {
            "from": self.first.isoformat(), "to": self.last.isoformat(), "every_weeks": self.every_weeks,
            "cohort_weeks": self.cohort_weeks, "observed_on": self.observed_on.isoformat(),
            "window_weeks": self.policy.window_weeks, "min_children": self.policy.min_children,
            "as_of_dates": self.dates, "estimates": self.estimates, "estimates_without_p90": self.without_p90,
            "to_support": part(self.to_support), "to_clock_stop": part(self.to_clock_stop),
            "target": "about 0.90 of children start within the predicted p90",
        }  # fmt: skip


async def backtest(
    uow: UnitOfWork, *, first: date, last: date, every_weeks: int, cohort_weeks: int = 4,
    observed_on: date, policy: WaitPolicy,
) -> Backtest:  # fmt: skip
    if every_weeks < 1 or cohort_weeks < 1:
        raise ValueError("every_weeks and cohort_weeks must be at least 1")
    if last < first:
        raise ValueError("the last date is before the first")
    result = Backtest(first, last, every_weeks, cohort_weeks, observed_on, policy)
    async with uow:
        clocks = await uow.directory.service_clocks()
        first_clocks = {sid: (c.clocks[0].value if c.clocks else None) for sid, c in clocks.items()}
        as_of = first
        while as_of <= last:
            result.dates += 1
            predicted = await estimates_in(uow, list(clocks), as_of, policy)
            cohort_end = min(as_of + timedelta(days=7 * cohort_weeks), observed_on)
            cohorts = await uow.waits.outcomes(first_clocks, as_of + timedelta(days=1), cohort_end)
            for sid, e in predicted.items():
                if not e.enough_data:
                    continue
                result.estimates += 1
                result.without_p90 += e.to_support.p90_days is None
                cohort = cohorts.get(sid, [])
                result.to_support.add(score(cohort, observed_on, to_support, median=e.to_support.median_days,
                                            p90=e.to_support.p90_days))  # fmt: skip
                if e.to_clock_stop is not None:
                    result.to_clock_stop.add(score(cohort, observed_on, to_clock_stop,
                                                   median=e.to_clock_stop.median_days,
                                                   p90=e.to_clock_stop.p90_days))  # fmt: skip
            as_of += timedelta(days=7 * every_weeks)
    return result
