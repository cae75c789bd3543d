"""An in-memory fake of the fact store's reads (adapters/facts.py): the same narrowing to a date
and a period, in Python, over facts derived in memory."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from waitlists.domain.clocks import ServiceClocks
from waitlists.domain.facts import ReferralFacts, derive
from waitlists.domain.metrics import Figures, Period, Tally, figures
from waitlists.domain.timeline import Timeline


def derive_all(timelines: Sequence[Timeline], services: Mapping[str, ServiceClocks]) -> list[ReferralFacts]:
    journeys: defaultdict[str, list[Timeline]] = defaultdict(list)
    for t in timelines:
        journeys[t.child_ref].append(t)
    found = []
    for t in timelines:
        facts = derive(t, services.get(t.service_id, ServiceClocks(())), journeys[t.child_ref])
        if facts is not None:
            found.append(facts)
    return found


def tally(facts: Iterable[ReferralFacts], day: date, period: Period) -> Tally:
    total = Tally(day, period)
    for f in facts:
        for w in f.waiting:
            if w.valid_from <= day < w.valid_to:
                waited = w.paused_days if w.waiting_since is None else (day - w.waiting_since).days
                assert waited is not None
                total.waiting(waited)
        for c in f.clock_spells:
            if c.valid_from <= day < c.valid_to:
                total.clock_spell(c.clock.value, c.breach_on, c.exception)
        for s in f.clock_stops:
            if s.exception and s.stopped_on <= day:
                total.exceptions_stopped(s.clock.value, 1)
            if s.stopped_on in Period(period.start, day):
                total.stopped_in_period(s.clock.value, s.outcome, s.exception)
        o = f.outcome
        if o.closed_on is not None and o.closed_status is not None and o.closed_on in Period(period.start, day):
            total.closed_in_period(o.closed_status, o.closed_reason, o.before_support)
        if f.gap is not None and f.gap.closed_on in Period(period.start, day):
            total.gap_closed((f.gap.closed_on - f.gap.opened_on).days)
        elif f.gap is not None and f.gap.opened_on <= day < f.gap.closed_on:
            total.gap_open((day - f.gap.opened_on).days)
        for kind, on in (("arrived", o.submitted_on), ("started", o.started_on), ("closed", o.closed_on)):
            if on is not None and on <= day:
                total.flow(kind, (day - on).days // 7)
    return total


def children_on_several_lists(facts: Iterable[ReferralFacts], day: date) -> int:
    services_by_child: defaultdict[str, set[str]] = defaultdict(set)
    for f in facts:
        if any(w.valid_from <= day < w.valid_to for w in f.waiting):
            services_by_child[f.child_ref].add(f.service_id)
    return sum(1 for s in services_by_child.values() if len(s) >= 2)


def figures_from_facts(
    in_scope: Sequence[Timeline], everyone: Sequence[Timeline], services: Mapping[str, ServiceClocks], day: date,
    period: Period,
) -> Figures:  # fmt: skip
    scope_ids = {t.referral_id for t in in_scope}
    facts = [f for f in derive_all(everyone, services) if f.referral_id in scope_ids]
    return figures(tally(facts, day, period), children_on_several_lists(facts, day))
