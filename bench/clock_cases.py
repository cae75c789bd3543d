"""Before/after figures of the clock cases of issue 14 §1, from the pure domain (clock view + facts tally).
Run: .venv/bin/python bench/clock_cases.py (before.txt: the same script at commit 88813cc, before the fix;
after.txt: at the commit that added it). Results in bench/results/clock-cases-2026-12-01/."""

from __future__ import annotations

import json
from datetime import date

from waitlists.domain.clocks import ClockKind, ServiceClocks
from waitlists.domain.facts import derive
from waitlists.domain.metrics import Period, Tally, clocks_on
from waitlists.domain.timeline import StatusChange, Timeline
from waitlists.entrypoints.clocks import clock_out

D = date.fromisoformat
CAMHS = ServiceClocks((ClockKind.CYPMH_4W,))
EHC = ServiceClocks((ClockKind.EHC_DECISION_6W, ClockKind.EHC_NO_PLAN_16W, ClockKind.EHC_PLAN_20W))


def tl(*changes):
    return Timeline.of("r", "c", "svc", "routine", [StatusChange(v, *c) for v, c in enumerate(changes, 1)])


def tally(t, service, day, start):
    total = Tally(D(day), Period(D(start), D(day)))
    for k in service.clocks:
        total.clock(k.value)
    f = derive(t, service, [t])
    if f is not None:
        for c in f.clock_spells:
            if c.valid_from <= D(day) < c.valid_to:
                total.clock_spell(c.clock.value, c.breach_on, c.exception)
        for s in f.clock_stops:
            if s.exception and s.stopped_on <= D(day):
                total.exceptions_stopped(s.clock.value, 1)
            if D(start) <= s.stopped_on <= D(day):
                total.stopped_in_period(s.clock.value, s.outcome, s.exception)
        waiting = sum(1 for w in f.waiting if w.valid_from <= D(day) < w.valid_to)
    else:
        waiting = 0
    return {
        "waiting": waiting,
        **{
            k: {
                "breached_waiting": c.breached_waiting,
                "imminent": c.imminent,
                "stopped": c.stopped,
                "met": c.met,
                "stopped_ex": c.stopped_ex,
                "exceptions": c.exceptions,
            }
            for k, c in tally_items(total)
        },
    }


def tally_items(t):
    return sorted(t.clocks.items())


CASES = [
    (
        "1 hold after breach (CYPMH 28d): submitted 5 Jan, accepted 6 Jan, family hold 10 Feb",
        CAMHS,
        tl(
            ("submitted", D("2026-01-05")),
            ("accepted", D("2026-01-06")),
            ("on_hold", D("2026-02-10"), "family_unavailable"),
        ),
        "2026-02-20",
        "2026-01-01",
    ),
    (
        "2 breach date, hold after breach then resumed 20 Feb",
        CAMHS,
        tl(
            ("submitted", D("2026-01-05")),
            ("accepted", D("2026-01-06")),
            ("on_hold", D("2026-02-10"), "family_unavailable"),
            ("accepted", D("2026-02-20")),
        ),
        "2026-03-01",
        "2026-01-01",
    ),
    (
        "3a completed before in_progress, late: submitted 5 Jan, accepted 6 Jan, completed(discharged) 1 Mar",
        CAMHS,
        tl(
            ("submitted", D("2026-01-05")),
            ("accepted", D("2026-01-06")),
            ("completed", D("2026-03-01"), None, "discharged"),
        ),
        "2026-06-30",
        "2026-01-01",
    ),
    (
        "3b completed before in_progress, in time: completed 20 Jan",
        CAMHS,
        tl(
            ("submitted", D("2026-01-05")),
            ("accepted", D("2026-01-06")),
            ("completed", D("2026-01-20"), None, "discharged"),
        ),
        "2026-06-30",
        "2026-01-01",
    ),
    (
        "4 same-day exception: submitted 5 Jan, accepted 20 Feb, then school_closed hold dated 20 Feb",
        EHC,
        tl(
            ("submitted", D("2026-01-05")),
            ("accepted", D("2026-02-20")),
            ("on_hold", D("2026-02-20"), "school_closed_4_weeks"),
        ),
        "2026-03-31",
        "2026-01-01",
    ),
    (
        "5a entered_in_error after completed",
        CAMHS,
        tl(
            ("submitted", D("2026-01-05")),
            ("accepted", D("2026-01-06")),
            ("in_progress", D("2026-01-20")),
            ("completed", D("2026-02-01"), None, "support_completed"),
            ("entered_in_error", D("2026-03-01")),
        ),
        "2026-01-25",
        "2026-01-01",
    ),
    (
        "5b on_hold -> on_hold: capacity hold 10 Jan, family hold 20 Jan (pause from 20 Jan)",
        CAMHS,
        tl(
            ("submitted", D("2026-01-05")),
            ("accepted", D("2026-01-06")),
            ("on_hold", D("2026-01-10"), "service_capacity"),
            ("on_hold", D("2026-01-20"), "family_unavailable"),
        ),
        "2026-02-01",
        "2026-01-01",
    ),
]
for name, service, t, day, start in CASES:
    print("==", name, "| as_of", day)
    view = (
        [clock_out(c, D(day)).model_dump(mode="json") for c in clocks_on(t, service, D(day))]
        if not t.in_error
        else None
    )
    print("clock view:", json.dumps(view))
    print("tally:", json.dumps(tally(t, service, day, start)))
