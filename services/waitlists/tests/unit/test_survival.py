"""The Kaplan-Meier estimator against small cases worked by hand (the expected numbers below are from the hand
calculation in each docstring, not from the code)."""

from __future__ import annotations

import math
import random

import pytest

from waitlists.domain.survival import kaplan_meier

E, C = True, False  # an event (support started) or censored (still waiting, or closed without support)


def test_eight_waits_with_censoring_worked_by_hand() -> None:
    """Waits 2, 3+, 4, 4, 5+, 6, 8+, 9 (+ censored).
    Day 2: 8 at risk, 1 event: S = 7/8 = 0.875.
    Day 4: at risk 4,4,5+,6,8+,9 = 6, 2 events: S = 0.875 * 4/6 = 0.583333.
    Day 6: at risk 6,8+,9 = 3, 1 event: S = 0.583333 * 2/3 = 0.388889.
    Day 9: at risk 1, 1 event: S = 0.
    Median: the first day with S <= 0.5 is 6; p90 (S <= 0.1): 9."""
    curve = kaplan_meier([(2, E), (3, C), (4, E), (4, E), (5, C), (6, E), (8, C), (9, E)])
    assert [(s.day, s.at_risk, s.events) for s in curve.steps] == [(2, 8, 1), (4, 6, 2), (6, 3, 1), (9, 1, 1)]
    assert [s.survival for s in curve.steps] == pytest.approx([0.875, 0.583333, 0.388889, 0.0], abs=1e-6)
    assert curve.survival(3) == pytest.approx(0.875)
    assert curve.survival(1) == 1.0
    assert (curve.n, curve.events) == (8, 5)
    assert curve.quantile(0.5) == 6
    assert curve.quantile(0.9) == 9


def test_a_curve_that_never_reaches_the_90th_percentile_gives_none() -> None:
    """The same but 9 censored: S stays at 0.388889 after day 6, so the median is 6 and there is no p90."""
    curve = kaplan_meier([(2, E), (3, C), (4, E), (4, E), (5, C), (6, E), (8, C), (9, C)])
    assert curve.quantile(0.5) == 6
    assert curve.quantile(0.9) is None
    assert curve.quantile_band(0.9)[1] is None


def test_a_tie_of_an_event_and_a_censoring_counts_the_censored_at_risk_and_greenwood_by_hand() -> None:
    """Waits 1, 2, 2+, 3. Day 1: 4 at risk, S = 3/4. Day 2: 3 at risk (2+ still counts), S = 3/4 * 2/3 = 0.5.
    Day 3: 1 at risk, S = 0. Median: 2 (S = 0.5 <= 0.5).
    Greenwood at day 2: sum = 1/(4*3) + 1/(3*2) = 0.25, Var = 0.5^2 * 0.25 = 0.0625."""
    curve = kaplan_meier([(1, E), (2, E), (2, C), (3, E)])
    assert [(s.day, s.at_risk) for s in curve.steps] == [(1, 4), (2, 3), (3, 1)]
    assert curve.steps[1].survival == pytest.approx(0.5)
    assert curve.steps[1].greenwood_sum == pytest.approx(0.25)
    assert curve.steps[1].variance == pytest.approx(0.0625)
    assert curve.quantile(0.5) == 2


def test_no_censoring_is_the_empirical_distribution() -> None:
    """Ten waits 1..10, all started: S(t) = 1 - t/10, median 5 (S = 0.5), p90 9 (S = 0.1)."""
    curve = kaplan_meier([(d, E) for d in range(1, 11)])
    assert [s.survival for s in curve.steps] == pytest.approx([1 - d / 10 for d in range(1, 11)])
    assert (curve.quantile(0.5), curve.quantile(0.9)) == (5, 9)


def test_the_log_log_interval_by_hand() -> None:
    """Waits 1..10 all started, at day 5: S = 0.5, Greenwood sum = sum_{n=10..6} 1/(n(n-1))
    = 1/90 + 1/72 + 1/56 + 1/42 + 1/30, which telescopes to 1/5 - 1/10 = 0.1.
    se on the log-log scale = sqrt(0.1) / |ln 0.5| = 0.316228 / 0.693147 = 0.456219;
    z * se = 1.96 * 0.456219 = 0.894189, exp(0.894189) = 2.44531, exp(-0.894189) = 0.408945;
    interval = 0.5^2.44531 .. 0.5^0.408945 = 0.1836 .. 0.7530."""
    step = kaplan_meier([(d, E) for d in range(1, 11)]).steps[4]
    assert step.greenwood_sum == pytest.approx(0.1)
    lower, upper = step.interval()
    assert lower == pytest.approx(0.1836, abs=5e-4)
    assert upper == pytest.approx(0.7530, abs=5e-4)


def test_the_p90_band_by_hand() -> None:
    """Waits 1..10 all started; the p90 is 9 (S = 0.1). The band runs from the first day the interval's lower end
    is <= 0.1 to the first day its upper end is.
    Day 6: S = 0.4, Greenwood sum 1/4 - 1/10 = 0.15, se = sqrt(0.15)/|ln 0.4| = 0.422681, lower end
    0.4^exp(1.96 * 0.422681) = 0.4^2.28981 = 0.1227 > 0.1.
    Day 7: S = 0.3, sum 1/3 - 1/10 = 0.2333, se = 0.401211, lower end 0.3^2.19544 = 0.0711 <= 0.1: low = 7.
    Day 9: S = 0.1, sum 1 - 1/10 = 0.9, se = sqrt(0.9)/|ln 0.1| = 0.412007, upper end 0.1^exp(-0.80752) =
    0.1^0.44597 = 0.358 > 0.1; day 10: S = 0, upper end 0: high = 10."""
    curve = kaplan_meier([(d, E) for d in range(1, 11)])
    assert curve.steps[5].interval()[0] == pytest.approx(0.1227, abs=5e-4)  # day 6
    assert curve.steps[6].interval()[0] == pytest.approx(0.0711, abs=5e-4)  # day 7
    assert curve.steps[8].interval()[1] == pytest.approx(0.358, abs=1e-3)  # day 9
    assert curve.quantile_band(0.9) == (7, 10)


def test_the_band_holds_the_p90_and_narrows_with_more_children() -> None:
    """Exponential waits of mean 30 days (true p90 = 30 ln 10 = 69 days), 20% censored at random: the band holds
    the estimate, and with 16 times the children it is narrower."""

    def band(n: int) -> tuple[int, int | None, int | None]:
        rng = random.Random(5)
        obs = []
        for _ in range(n):
            wait = round(rng.expovariate(1 / 30))
            if rng.random() < 0.2:
                obs.append((rng.randrange(0, wait + 1), C))
            else:
                obs.append((wait, E))
        curve = kaplan_meier(obs)
        p90 = curve.quantile(0.9)
        assert p90 is not None
        low, high = curve.quantile_band(0.9)
        return p90, low, high

    p90, low, high = band(4000)
    assert low is not None and high is not None and low <= p90 <= high
    assert abs(p90 - 30 * math.log(10)) < 6
    small_p90, small_low, small_high = band(250)
    assert small_low is not None and small_low <= small_p90
    assert small_high is None or (small_high - small_low) > (high - low)


def test_nothing_and_nonsense() -> None:
    empty = kaplan_meier([])
    assert (empty.n, empty.quantile(0.5), empty.quantile_band(0.9)) == (0, None, (None, None))
    with pytest.raises(ValueError, match="negative"):
        kaplan_meier([(-1, E)])
