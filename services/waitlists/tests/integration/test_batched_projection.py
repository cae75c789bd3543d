"""A consumer transaction's referrals: read ahead for the batch in one statement, kept as saved, written once
before any other read and before the commit; what each event sees is what one transaction per event would have
left, and the database ends the same."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import session_factory
from waitlists.adapters.orm import referral_changes, referrals
from waitlists.adapters.unit_of_work import JoinedUnitOfWork
from waitlists.bootstrap import handle_referral_event, read_referrals_ahead, refresh_facts
from waitlists.service_layer.projection import CONSUMER_GROUP

from .conftest import directory_events, feed, referral_events

CHANGES = [("submitted", "2026-01-05"), ("acknowledged", "2026-01-07"), ("accepted", "2026-01-20"),
           ("scheduled", "2026-02-02")]  # fmt: skip


async def _held(engine: AsyncEngine) -> tuple[list[tuple[str, int, str]], list[tuple[str, int]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(referrals.c.referral_id, referrals.c.latest_version,
                                         referrals.c.latest_status).order_by(referrals.c.referral_id))  # fmt: skip
        changes = await conn.execute(
            select(referral_changes.c.referral_id, referral_changes.c.version).order_by(
                referral_changes.c.referral_id, referral_changes.c.version
            )
        )
        return [tuple(row) for row in rows], [tuple(row) for row in changes]  # type: ignore[misc]


def _gaps() -> float:
    return REGISTRY.get_sample_value("consumer_version_gaps_total", {"group": CONSUMER_GROUP}) or 0.0


async def test_a_batch_folds_each_referral_s_versions_in_turn_and_writes_them_once(engine: AsyncEngine) -> None:
    await feed(engine, *directory_events())
    gaps = _gaps()
    held = referral_events("ref-held", "child-1", "svc-camhs", *CHANGES)
    new = referral_events("ref-new", "child-2", "svc-slt", *CHANGES[:3])
    await feed(engine, held[0])  # held before the batch: read ahead from the database
    batch = [*held[1:3], new[0], new[1], held[3], new[2]]
    async with session_factory(engine)() as session, session.begin():
        await read_referrals_ahead(batch, session)
        for event in batch[:3]:
            await handle_referral_event(event, session)
        # A read in the middle writes what was saved so far, and what follows still folds onto it.
        assert await JoinedUnitOfWork(session).referrals.children_at(["svc-camhs"]) == {"child-1"}
        for event in batch[3:]:
            await handle_referral_event(event, session)
        await refresh_facts(session)
    assert await _held(engine) == (
        [("ref-held", 4, "scheduled"), ("ref-new", 3, "accepted")],
        [("ref-held", v) for v in (1, 2, 3, 4)] + [("ref-new", v) for v in (1, 2, 3)],
    )
    assert _gaps() == gaps  # every version found the one before it, written or not


async def test_the_same_events_one_transaction_each_leave_the_same(engine: AsyncEngine) -> None:
    await feed(engine, *directory_events())
    held = referral_events("ref-held", "child-1", "svc-camhs", *CHANGES)
    new = referral_events("ref-new", "child-2", "svc-slt", *CHANGES[:3])
    await feed(engine, held[0], *held[1:3], new[0], new[1], held[3], new[2])
    assert await _held(engine) == (
        [("ref-held", 4, "scheduled"), ("ref-new", 3, "accepted")],
        [("ref-held", v) for v in (1, 2, 3, 4)] + [("ref-new", v) for v in (1, 2, 3)],
    )


async def test_a_repeat_in_a_batch_changes_nothing(engine: AsyncEngine) -> None:
    await feed(engine, *directory_events())
    events = referral_events("ref-a", "child-1", "svc-camhs", *CHANGES[:2])
    async with session_factory(engine)() as session, session.begin():
        batch = [events[0], events[1], events[0]]
        await read_referrals_ahead(batch, session)
        for event in batch:
            await handle_referral_event(event, session)
        await refresh_facts(session)
    assert await _held(engine) == ([("ref-a", 2, "acknowledged")], [("ref-a", 1), ("ref-a", 2)])
