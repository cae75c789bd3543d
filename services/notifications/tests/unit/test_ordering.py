"""A referral's events go on in version order: the next version goes, an early one waits, a repeat is dropped."""

from __future__ import annotations

import pytest

from notifications.domain.ordering import Arrival, arrival


@pytest.mark.parametrize(
    ("last_sent", "version", "expected"),
    [
        (0, 1, Arrival.NEXT),  # a new referral's first event
        (3, 4, Arrival.NEXT),
        (3, 3, Arrival.STALE),  # a repeat (republished after a loss)
        (3, 1, Arrival.STALE),
        (3, 5, Arrival.EARLY),  # version 4 was lost and is coming back behind it
        (0, 2, Arrival.EARLY),
    ],
)
def test_arrival(last_sent: int, version: int, expected: Arrival) -> None:
    assert arrival(last_sent, version) is expected
