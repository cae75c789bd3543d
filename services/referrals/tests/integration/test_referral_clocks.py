"""The clocks waitlists tells (``uk.send.waitlist.clocks_updated.v1``) kept in ``referral_clocks`` on PostgreSQL
and SQLite, through the consumer's handler in a transaction as the consumer runtime runs it: the newest referral
version wins, and the family view reads them back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from referrals.adapters.clocks_repository import SqlReferralClocksRepository
from referrals.adapters.orm import referral_clocks
from referrals.bootstrap import waitlists_event_handler
from referrals.entrypoints.cli import main as cli_main
from send_shared.db import create_engine, session_factory
from send_shared.events.envelope import CloudEvent


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", database_url)
        await asyncio.to_thread(cli_main, ["migrate"])
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def told(referral_id: str, version: int, *clocks: tuple[str, str, str | None, str | None]) -> CloudEvent:
    return CloudEvent(
        type="uk.send.waitlist.clocks_updated.v1", source="/send/waitlists", subject=referral_id,
        data={"referral_id": referral_id, "referral_version": version, "service_id": "svc-ehc",
              "receiving_org_id": "org-la", "referrer_org_id": "org-school",
              "clocks": [{"clock": kind, "target_days": 42, "start_date": "2026-01-20", "state": state,
                          "breach_date": breach, "stopped_on": stopped, "exception": False}
                         for kind, state, breach, stopped in clocks]},
    )  # fmt: skip


async def handle(engine: AsyncEngine, event: CloudEvent) -> None:
    async with session_factory(engine)() as session, session.begin():
        await waitlists_event_handler("/send/referrals")(event, session)


async def test_the_newest_version_is_kept_and_read_back(engine: AsyncEngine) -> None:
    await handle(engine, told("r1", 1, ("ehc_decision_6w", "running", "2026-03-04", None)))
    await handle(engine, told("r2", 2, ("cypmh_4w", "paused", None, None)))
    await handle(engine, told("r1", 3, ("ehc_decision_6w", "met", None, "2026-02-20"),
                                       ("ehc_plan_20w", "running", "2026-06-10", None)))  # fmt: skip
    await handle(engine, told("r1", 2, ("ehc_decision_6w", "late", "2026-03-04", None)))  # older, late: ignored
    async with engine.connect() as conn:
        rows = {r.referral_id: r.referral_version for r in await conn.execute(select(referral_clocks))}
    assert rows == {"r1": 3, "r2": 2}
    async with session_factory(engine)() as session:
        found = await SqlReferralClocksRepository(session).clocks_of(["r1", "r2", "r9", "r1"])
    assert sorted(found) == ["r1", "r2"]
    assert [(c.clock, c.state, c.breach_date, c.stopped_on) for c in found["r1"]] == [
        ("ehc_decision_6w", "met", None, date(2026, 2, 20)),
        ("ehc_plan_20w", "running", date(2026, 6, 10), None),
    ]
    assert [(c.clock, c.state, c.start_date, c.target_days) for c in found["r2"]] == [
        ("cypmh_4w", "paused", date(2026, 1, 20), 42)
    ]
    await handle(engine, told("r2", 2))  # the same version told again (the service stopped its clocks): kept
    async with session_factory(engine)() as session:
        assert await SqlReferralClocksRepository(session).clocks_of(["r2"]) == {"r2": []}
