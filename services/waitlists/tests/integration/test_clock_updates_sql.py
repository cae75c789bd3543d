"""Clocks told through the outbox (``uk.send.waitlist.clocks_updated.v1``) on PostgreSQL and SQLite: in the
transaction that projects the change, only when they differ from those told last, and never again after a
rebuild puts the projection back in place."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.events.envelope import encode_kafka
from waitlists.adapters.orm import clock_updates_sent, outbox
from waitlists.adapters.projection_store import SqlProjectionStore
from waitlists.service_layer.replay import ReplayFold

from .conftest import directory_events, feed, referral_events

CLOCKS_UPDATED = "uk.send.waitlist.clocks_updated.v1"


async def told(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.store.c.topic, outbox.store.c.message_key, outbox.store.c.headers, outbox.store.c.payload)
            .order_by(outbox.store.c.position)
        )  # fmt: skip
        found = []
        for topic, key, headers, payload in rows:
            if headers["ce_type"] == CLOCKS_UPDATED:
                assert (topic, key, headers["ce_subject"]) == ("waitlists.alerts.v1", json.loads(payload)["referral_id"],
                                                               key)  # fmt: skip
                found.append(json.loads(payload))
        return found


async def test_an_ehc_referrals_clocks_are_told_when_they_change_and_a_rebuild_tells_nothing(
    engine: AsyncEngine,
) -> None:
    directory = directory_events()
    history = referral_events(
        "r1", "c1", "svc-ehc",
        ("submitted", "2026-01-05"), ("acknowledged", "2026-01-07"), ("accepted", "2026-02-10"),
    )  # fmt: skip
    await feed(engine, *directory)
    await feed(engine, *history)
    found = await told(engine)
    assert [(t["referral_version"], t["service_id"], t["receiving_org_id"], t["referrer_org_id"]) for t in found] == [
        (1, "svc-ehc", "org-la", "org-school"),  # submitted
        (3, "svc-ehc", "org-la", "org-school"),  # accepted; the acknowledgement changed no clock
    ]
    # 6 weeks from 5 Jan: late from 17 Feb; 20 weeks: from 26 May. The no-plan clock applies only with no plan.
    assert [(c["clock"], c["state"], c["breach_date"], c["stopped_on"]) for c in found[0]["clocks"]] == [
        ("ehc_decision_6w", "running", "2026-02-17", None),
        ("ehc_plan_20w", "running", "2026-05-26", None),
    ]
    assert [(c["clock"], c["state"], c["breach_date"], c["stopped_on"]) for c in found[1]["clocks"]] == [
        ("ehc_decision_6w", "met", None, "2026-02-10"),
        ("ehc_plan_20w", "running", "2026-05-26", None),
    ]
    async with engine.connect() as conn:
        before = (await conn.execute(select(clock_updates_sent))).all()
    assert [(r.referral_id, r.referral_version) for r in before] == [("r1", 3)]

    fold = ReplayFold()
    for event in [*directory, *history]:
        fold.add(*encode_kafka(event))
    await SqlProjectionStore(engine).replace(fold.result())
    async with engine.connect() as conn:
        assert (await conn.execute(select(clock_updates_sent))).all() == before, "a rebuild keeps what was told"
    await feed(engine, history[-1])  # met again after the rebuild (as a consumer would, were its inbox lost)
    assert len(await told(engine)) == 2
    plan = referral_events(
        "r1", "c1", "svc-ehc",
        ("submitted", "2026-01-05"), ("acknowledged", "2026-01-07"), ("accepted", "2026-02-10"),
        ("completed", "2026-06-01", None, "plan_issued"),
    )[-1]  # fmt: skip
    await feed(engine, plan)
    last = (await told(engine))[-1]
    assert last["referral_version"] == 4
    assert [(c["clock"], c["state"], c["breach_date"], c["stopped_on"]) for c in last["clocks"]] == [
        ("ehc_decision_6w", "met", None, "2026-02-10"),
        ("ehc_plan_20w", "late", "2026-05-26", "2026-06-01"),
    ]
