"""Need codes in the projection (migration 0007) and time to support by need code read back in SQL, on PostgreSQL
and SQLite (issue #18)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

import waitlists
from send_shared.db import create_engine, session_factory
from waitlists.adapters.unit_of_work import SqlUnitOfWork
from waitlists.domain.scope import Scope
from waitlists.service_layer.impact import NeedTimeToSupport, impact_report

from .conftest import directory_events, feed, referral_events

MIGRATIONS = Path(waitlists.__file__).parent / "migrations"


def _alembic(database_url: str, step: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    getattr(command, step)(config, revision)


async def _columns(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("referrals")})


async def test_migration_0007_adds_the_need_codes_and_keeps_the_referrals(database_url: str) -> None:
    await asyncio.to_thread(_alembic, database_url, "upgrade", "0006")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO referrals (referral_id, child_ref, service_id, receiving_org_id, referrer_org_id, "
                "urgency, latest_version, latest_status) VALUES ('r0', 'c0', 'svc-camhs', 'org-camhs', 'org-school', "
                "'routine', 1, 'submitted')"
            ))  # fmt: skip
        await asyncio.to_thread(_alembic, database_url, "upgrade", "head")
        assert {"primary_need", "secondary_need"} <= await _columns(engine)
        async with engine.connect() as conn:
            held = (await conn.execute(text("SELECT referral_id, primary_need, secondary_need FROM referrals"))).all()
        assert [tuple(row) for row in held] == [("r0", None, None)]  # counted as unknown until a rebuild
        await asyncio.to_thread(_alembic, database_url, "downgrade", "0006")
        assert not {"primary_need", "secondary_need"} & await _columns(engine)
    finally:
        await engine.dispose()


async def test_time_to_support_by_need_code_read_back(engine: AsyncEngine) -> None:
    # Submitted 5 January, started 20 January (15 days): r1 with SEMH and ASD. Started 30 January (25 days): r2 with
    # SEMH twice (one code), and five more SEMH. r3 started the same day without codes: projected from an event that
    # carried none. SEMH: 15, then six of 25 (median rank 4 = 25); ASD: r1 alone, withheld from others.
    events = [*directory_events()]
    events += referral_events("r1", "c1", "svc-camhs", ("submitted", "2026-01-05"), ("accepted", "2026-01-06"),
                              ("in_progress", "2026-01-20"), needs=("SEMH", "ASD"))  # fmt: skip
    events += referral_events("r2", "c2", "svc-camhs", ("submitted", "2026-01-05"), ("in_progress", "2026-01-30"),
                              needs=("SEMH", "SEMH"))  # fmt: skip
    for i in range(5):
        events += referral_events(f"r{10 + i}", f"k{i}", "svc-camhs", ("submitted", "2026-01-05"),
                                  ("in_progress", "2026-01-30"), needs=("SEMH", None))  # fmt: skip
    events += referral_events("r3", "c3", "svc-camhs", ("submitted", "2026-01-05"), ("in_progress", "2026-01-30"))
    await feed(engine, *events)
    uow = SqlUnitOfWork(session_factory(engine))
    async with uow:
        read = await uow.facts.impact(["svc-camhs"], date(2025, 1, 1), date(2026, 3, 1))
    grouped: Counter[tuple[str, str, int, tuple[str, ...]]] = Counter()
    for start in read.starts:  # SEMH with SEMH and SEMH alone are rows of their own
        grouped[(start.service_id, start.referrer_kind, start.days, start.needs)] += start.n
    assert grouped == {("svc-camhs", "school", 15, ("SEMH", "ASD")): 1, ("svc-camhs", "school", 25, ("SEMH",)): 6,
                       ("svc-camhs", "school", 25, ("unknown",)): 1}  # fmt: skip
    own = await impact_report(Scope.SERVICE, "svc-camhs", date(2026, 3, 1), uow, viewer="org-camhs")
    assert own.services[0].time_to_support_by_need == [
        NeedTimeToSupport("ASD", 1, 15, 15),
        NeedTimeToSupport("SEMH", 7, 25, 25),
        NeedTimeToSupport("unknown", 1, 25, 25),
    ]
    others = await impact_report(Scope.AREA, "la-test", date(2026, 3, 1), uow, viewer="org-school")
    (camhs,) = [row for row in others.services if row.scope_id == "svc-camhs"]
    by_need = {n.need_code: n for n in camhs.time_to_support_by_need}
    assert by_need["ASD"] == NeedTimeToSupport("ASD", None, None, None)
    assert by_need["unknown"] == NeedTimeToSupport("unknown", None, None, None)
    # 8 started (r1, r2, five more, r3) less 7 with SEMH would give back the one referral without SEMH (r3).
    assert None in (camhs.time_to_support[0].started, by_need["SEMH"].started)
