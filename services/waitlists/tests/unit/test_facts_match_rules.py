"""For any referral histories and any date, the figures added up from the date-ranged facts equal the
figures the independent oracle works out from the brief by walking every history day by day."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from waitlists.domain.facts import ClockSpell, WaitingSpell, _merge
from waitlists.domain.metrics import Period

from . import oracle, shapes
from .fake_facts import figures_from_facts
from .histories import SERVICES, build, near, referral, reporting_day

PRODUCTION_SERVICES = shapes.service_clocks(SERVICES)


@settings(max_examples=400, deadline=None)
@given(
    specs=st.lists(referral, min_size=1, max_size=8),
    anchors=st.lists(reporting_day, min_size=1, max_size=3),
    period_days=st.integers(0, 400),
    scope=st.sampled_from([None, *sorted(SERVICES)]),
)
def test_facts_add_up_to_the_rules(specs: list, anchors: list, period_days: int, scope: str | None) -> None:  # type: ignore[type-arg]
    everyone = [build(i, s) for i, s in enumerate(specs)]
    timelines = shapes.timelines(everyone)
    in_scope = [t for t in timelines if scope is None or t.service_id == scope]
    for day in sorted({near(everyone, a) for a in anchors}):
        period = Period(day - timedelta(days=period_days), day)
        expected = oracle.figures(everyone, SERVICES, None if scope is None else {scope}, day, period.start)
        found = figures_from_facts(in_scope, timelines, PRODUCTION_SERVICES, day, period)
        assert shapes.plain(found) == expected, day


def test_back_to_back_spells_merge_only_when_all_they_hold_is_equal() -> None:
    """A move that changed nothing counted joins two spells; any held value that differs, or a gap between them,
    keeps them apart."""
    a, b, c, d = (date(2026, 1, day) for day in (1, 5, 9, 12))
    same: tuple[date | None, int | None] = (a, None)
    assert _merge([(a, b, same), (b, c, same), (c, d, same)]) == [(a, d, same)]
    for other in ((b, None), (None, 3), (None, None)):
        assert _merge([(a, b, same), (b, c, other)]) == [(a, b, same), (b, c, other)]
    assert _merge([(a, b, same), (c, d, same)]) == [(a, b, same), (c, d, same)]


def test_a_spell_is_built_from_its_dates_and_all_it_holds() -> None:
    """The facts build each spell by position from its dates and what the merge compared: nothing defaulted, and
    the fields in that order."""
    assert WaitingSpell._fields == ("valid_from", "valid_to", "waiting_since", "paused_days")
    assert ClockSpell._fields == ("clock", "valid_from", "valid_to", "breach_on", "exception")
    for spell in (WaitingSpell, ClockSpell):
        assert spell._field_defaults == {}
