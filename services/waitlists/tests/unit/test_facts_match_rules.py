"""For any referral histories and any date, the figures added up from the date-ranged facts equal the
figures the independent oracle works out from the brief by walking every history day by day."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from waitlists.domain.facts import ClockSpell, WaitingSpell
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


def test_a_spell_holds_every_field_but_its_dates() -> None:
    """Back-to-back spells merge when what they hold is equal: a field left out of ``held`` would merge
    spells that differ."""
    for spell in (WaitingSpell, ClockSpell):
        names = {f.name for f in fields(spell)} - {"valid_from", "valid_to"}
        example = spell(**{name: object() for name in (f.name for f in fields(spell))})
        assert len(example.held) == len(names)
        assert set(map(id, example.held)) == {id(getattr(example, name)) for name in names}
