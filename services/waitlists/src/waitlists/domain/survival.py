"""The Kaplan-Meier estimator of a waiting-time curve, with right-censoring, and its quantiles. Pure Python.

An observation is a whole number of days and whether the thing waited for happened then (an event) or the
wait was last seen unfinished then (censored: still waiting, or closed without it).

- Ties: at a day with events and censorings both, the censored waits count as still at risk on that day
  (they were seen to last the whole day), the usual convention.
- ``S(t)`` is the product over event days ``t_j <= t`` of ``1 - d_j / n_j`` (``d_j`` events of ``n_j`` at risk).
- The ``q`` quantile is the smallest event day with ``S(t) <= 1 - q``; None if the curve never gets there
  (too many still waiting for the data to say).
- Uncertainty: Greenwood's variance, ``Var S(t) = S(t)^2 * sum d_j / (n_j (n_j - d_j))``, turned into a pointwise
  95% interval for ``S(t)`` on the log-log scale (``S^exp(+-z * se)``, ``se = sqrt(sum) / |log S|``), which stays
  inside [0, 1]. The band of a quantile is the Brookmeyer-Crowley construction: the days whose interval holds
  ``1 - q``, i.e. from the first day the interval's lower end reaches ``1 - q`` to the first day its upper end
  does (None when that never happens in the data: the band is open upwards).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

Z_95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Step:
    """One event day of the curve: at risk, events, the survival just after it, and Greenwood's sum so far."""

    day: int
    at_risk: int
    events: int
    survival: float
    greenwood_sum: float

    @property
    def variance(self) -> float:
        """Greenwood's variance of ``S`` at this day (infinite once every child at risk had the event)."""
        return self.survival**2 * self.greenwood_sum

    def interval(self, z: float = Z_95) -> tuple[float, float]:
        """Pointwise interval of ``S`` at this day, log-log scale: (lower, upper)."""
        s = self.survival
        if s <= 0.0:
            return 0.0, 0.0
        if s >= 1.0:
            return 1.0, 1.0
        if math.isinf(self.greenwood_sum):
            return 0.0, 1.0
        se = math.sqrt(self.greenwood_sum) / abs(math.log(s))
        return s ** math.exp(z * se), s ** math.exp(-z * se)


@dataclass(frozen=True, slots=True)
class Curve:
    """A Kaplan-Meier curve: its event days in order, and how many observations it was built from."""

    steps: tuple[Step, ...]
    n: int
    events: int

    def survival(self, day: int) -> float:
        """``S(day)``: the share still waiting after ``day``."""
        found = 1.0
        for step in self.steps:
            if step.day > day:
                break
            found = step.survival
        return found

    def quantile(self, q: float) -> int | None:
        """The smallest day with ``S <= 1 - q``; None if never reached."""
        return next((s.day for s in self.steps if s.survival <= 1.0 - q + 1e-12), None)

    def quantile_band(self, q: float, z: float = Z_95) -> tuple[int | None, int | None]:
        """Brookmeyer-Crowley band of the ``q`` quantile (log-log Greenwood intervals): (low, high); low None
        when the curve never gets near, high None when the data never bound it above."""
        target = 1.0 - q + 1e-12
        low = high = None
        for step in self.steps:
            lower, upper = step.interval(z)
            if low is None and lower <= target:
                low = step.day
            if high is None and upper <= target:
                high = step.day
        return low, high


def kaplan_meier(observations: Iterable[tuple[int, bool]] | Counter[tuple[int, bool]]) -> Curve:
    """The curve of ``(days, event)`` observations (a ``Counter`` of them for repeated ones)."""
    counts: Counter[tuple[int, bool]] = observations if isinstance(observations, Counter) else Counter(observations)
    if any(day < 0 for day, _ in counts):
        raise ValueError("a wait of negative days")
    n = sum(counts.values())
    at_risk = n
    survival, greenwood = 1.0, 0.0
    steps: list[Step] = []
    for day in sorted({day for day, _ in counts}):
        d = counts.get((day, True), 0)
        c = counts.get((day, False), 0)
        if d:
            survival *= 1.0 - d / at_risk
            greenwood = greenwood + d / (at_risk * (at_risk - d)) if at_risk > d else math.inf
            steps.append(Step(day, at_risk, d, survival, greenwood))
        at_risk -= d + c
    return Curve(tuple(steps), n, sum(v for (_, event), v in counts.items() if event))
