"""The capacity and impact reads in SQL (adapters/capacity.py, adapters/impact.py), on PostgreSQL and SQLite, against
a history worked by hand (issue #18)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import session_factory
from waitlists.adapters.unit_of_work import SqlUnitOfWork
from waitlists.domain.capacity import Waiter
from waitlists.domain.impact import Completion, Start, Submission

from .conftest import directory_events, feed, referral_events


async def test_capacity_and_impact_reads(engine: AsyncEngine) -> None:
    await feed(
        engine,
        *directory_events(),
        *referral_events("r1", "c1", "svc-camhs", ("submitted", "2026-01-05"), ("accepted", "2026-01-06"),
                         ("in_progress", "2026-01-20"), ("completed", "2026-02-01", None, "goals_met")),
        *referral_events("r3", "c2", "svc-camhs", ("submitted", "2026-02-10"), ("accepted", "2026-02-12"),
                         ("on_hold", "2026-02-20", "family_unavailable")),
        *referral_events("r2", "c1", "svc-camhs", ("submitted", "2026-03-01")),
    )  # fmt: skip
    uow = SqlUnitOfWork(session_factory(engine))
    async with uow:
        read = await uow.facts.activity(
            ["svc-camhs"], date(2026, 1, 1), date(2026, 3, 4), [date(2026, 2, 22), date(2026, 3, 1), date(2026, 3, 4)]
        )
        impact = await uow.facts.impact(["svc-camhs"], date(2025, 1, 1), date(2026, 9, 1))
    mine = read["svc-camhs"]
    assert mine.submitted == {date(2026, 1, 5): 1, date(2026, 2, 10): 1, date(2026, 3, 1): 1}
    assert mine.started == {date(2026, 1, 20): 1}
    # r3 waits on hold from 20 February (a family hold: its 10 days stand still, its clock paused before its breach
    # date, so it has none); r2 from 1 March, due on 30 March (28 days + 1).
    assert mine.waiting_on == {date(2026, 2, 22): 1, date(2026, 3, 1): 2, date(2026, 3, 4): 2}
    assert sorted(mine.queue, key=lambda w: w.referral_id) == [
        Waiter("r2", 3, date(2026, 3, 30)),
        Waiter("r3", 10, None),
    ]
    assert impact.completions == [Completion("c1", "svc-camhs", date(2026, 2, 1), "goals_met")]
    assert sorted(impact.submissions, key=lambda s: s.submitted_on) == [
        Submission("c1", "svc-camhs", date(2026, 1, 5)),
        Submission("c1", "svc-camhs", date(2026, 3, 1)),
    ]
    assert impact.starts == [Start("svc-camhs", "school", 15, 1)]
