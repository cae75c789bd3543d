"""For any referral histories and any date, the figures added up from the date-ranged facts equal
the figures worked out by evaluating every timeline on that date (the oracle)."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from waitlists.domain.facts import ClockSpell, WaitingSpell
from waitlists.domain.metrics import Period
from waitlists.domain.timeline import Timeline

from . import oracle
from .fake_facts import figures_from_facts
from .histories import EPOCH, SERVICES, build, referral


@settings(max_examples=400, deadline=None)
@given(
    specs=st.lists(referral, min_size=1, max_size=8),
    as_of=st.integers(0, 800),
    period_days=st.integers(0, 400),
    scope=st.sampled_from([None, *sorted(SERVICES)]),
)
def test_facts_add_up_to_the_rules(specs: list, as_of: int, period_days: int, scope: str | None) -> None:  # type: ignore[type-arg]
    everyone = [build(i, s) for i, s in enumerate(specs)]
    in_scope = [t for t in everyone if scope is None or t.service_id == scope]
    day = EPOCH + timedelta(days=as_of)
    period = Period(day - timedelta(days=period_days), day)
    journeys: dict[str, list[Timeline]] = {}
    for t in everyone:
        journeys.setdefault(t.child_ref, []).append(t)
    expected = oracle.figures(in_scope, journeys, SERVICES, day, period)
    assert oracle.comparable(figures_from_facts(in_scope, everyone, SERVICES, day, period)) == oracle.comparable(
        expected
    )


def test_a_spell_holds_every_field_but_its_dates() -> None:
    """Back-to-back spells merge when what they hold is equal: a field left out of ``held`` would merge
    spells that differ."""
    for spell in (WaitingSpell, ClockSpell):
        names = {f.name for f in fields(spell)} - {"valid_from", "valid_to"}
        example = spell(**{name: object() for name in (f.name for f in fields(spell))})
        assert len(example.held) == len(names)
        assert set(map(id, example.held)) == {id(getattr(example, name)) for name in names}
