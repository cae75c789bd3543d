"""The referral-state projection, on a real database: out-of-order and repeated events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import create_engine, session_factory
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import ReferralEventV1, ReferralStatus, referral_event_type
from waitlists.adapters.orm import referral_states
from waitlists.entrypoints.cli import main as cli_main
from waitlists.entrypoints.consumers import on_referral_event

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", database_url)
        await asyncio.to_thread(cli_main, ["migrate"])
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def event(version: int, status: ReferralStatus, day: int) -> CloudEvent:
    data = ReferralEventV1(
        referral_id="r-1",
        version=version,
        status=status,
        child_ref="c" * 32,
        referrer_org_id="org-school",
        service_id="svc-camhs-core",
        receiving_org_id="org-camhs",
        occurred_at=T0 + timedelta(days=day),
        recorded_at=T0 + timedelta(days=day),
    )
    return CloudEvent(
        type=referral_event_type(status), source="/test", subject="r-1", data=data.model_dump(mode="json")
    )


async def apply(engine: AsyncEngine, *events: CloudEvent) -> None:
    sessions = session_factory(engine)
    for e in events:
        async with sessions() as session, session.begin():
            await on_referral_event(e, session)


async def state(engine: AsyncEngine) -> tuple[int, str]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(referral_states.c.version, referral_states.c.status))).one()
    return row[0], row[1]


async def test_newer_version_wins_whatever_the_arrival_order(engine: AsyncEngine) -> None:
    submitted = event(1, ReferralStatus.SUBMITTED, 0)
    accepted = event(2, ReferralStatus.ACCEPTED, 3)
    await apply(engine, accepted, submitted, accepted)
    assert await state(engine) == (2, "accepted")


async def test_in_order_events_fold_to_the_latest(engine: AsyncEngine) -> None:
    await apply(engine, event(1, ReferralStatus.SUBMITTED, 0), event(2, ReferralStatus.ACCEPTED, 3))
    assert await state(engine) == (2, "accepted")
