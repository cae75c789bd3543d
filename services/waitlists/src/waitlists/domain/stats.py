"""Small statistics with one right answer each (brief §4): nearest-rank percentiles, half-up percentages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

SMALL_NUMBER = 5


def nearest_rank(counts: Mapping[int, int], p: float) -> int | None:
    """The value at rank ceil(p * n) of the sorted values, given as value -> how many; None for none."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(p * total))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable")


def percent(numerator: int, denominator: int) -> float | None:
    """Rounded half-up to one decimal; None (not 0) when there is nothing to divide by."""
    if denominator == 0:
        return None
    value = (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return float(value)


def suppress(count: int | None) -> int | None:
    """Official-statistics disclosure control: counts from 1 to 4 are withheld."""
    return None if count is not None and 0 < count < SMALL_NUMBER else count
