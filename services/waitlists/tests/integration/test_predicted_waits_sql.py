"""Predicted waits over the real fact tables (PostgreSQL and SQLite): the one grouped read of the referrals'
outcomes with their first clock's stop gives the figures worked by hand, and the estimate event goes through the
outbox once per change."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import session_factory
from send_shared.events.schemas import WaitEstimateV1
from waitlists.adapters.orm import outbox
from waitlists.adapters.unit_of_work import SqlUnitOfWork
from waitlists.domain.waits import WaitPolicy
from waitlists.service_layer.waits import refresh_estimates, service_estimate

from .conftest import directory_events, feed, referral_events

WAIT_ESTIMATE = "uk.send.waitlist.wait_estimate.v1"
SUBMITTED = date(2026, 1, 5)


def day(n: int) -> str:
    return (SUBMITTED + timedelta(days=n)).isoformat()


async def sent(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.store.c.topic, outbox.store.c.message_key, outbox.store.c.headers, outbox.store.c.payload)
            .order_by(outbox.store.c.position)
        )  # fmt: skip
        return [
            {"topic": topic, "key": key, "subject": headers["ce_subject"], **json.loads(payload)}
            for topic, key, headers, payload in rows
            if headers["ce_type"] == WAIT_ESTIMATE
        ]


async def test_the_estimate_from_the_fact_tables_worked_by_hand_and_sent_once_per_change(engine: AsyncEngine) -> None:
    """At svc-camhs (cypmh_4w, stopped when support starts), all submitted 5 January 2026: r1..r18 start after
    2, 4, ..., 36 days, r19 and r20 after 40 and 42, r21 is rejected on day 10, r24 is still waiting on 1 March
    (day 55); r22 is entered in error. By hand (as in the unit test): median 22, p90 40, 22 children. At svc-slt
    (service_target): 3 referrals, below the threshold."""
    await feed(engine, *directory_events())
    history = []
    for i, after in ({i: 2 * i for i in range(1, 19)} | {19: 40, 20: 42}).items():
        history += referral_events(f"r{i}", f"c{i}", "svc-camhs", ("submitted", day(0)), ("accepted", day(0)),
                                   ("in_progress", day(after)))  # fmt: skip
    history += referral_events("r21", "c21", "svc-camhs", ("submitted", day(0)), ("rejected", day(10), "outside_remit"))
    history += referral_events("r24", "c24", "svc-camhs", ("submitted", day(0)), ("accepted", day(3)))
    history += referral_events("r22", "c22", "svc-camhs", ("submitted", day(0)), ("entered_in_error", day(3)))
    for i in range(3):
        history += referral_events(f"s{i}", f"d{i}", "svc-slt", ("submitted", day(1)))
    await feed(engine, *history)
    uows = session_factory(engine)
    policy = WaitPolicy(26, 20)

    found, organisation_id = await service_estimate("svc-camhs", date(2026, 3, 1), SqlUnitOfWork(uows), policy)
    assert (organisation_id, found.children, found.enough_data, found.clock) == ("org-camhs", 22, True, "cypmh_4w")
    assert (found.to_support.median_days, found.to_support.p90_days) == (22, 40)
    assert found.to_clock_stop is not None
    assert (found.to_clock_stop.median_days, found.to_clock_stop.p90_days) == (22, 40)
    slt, _ = await service_estimate("svc-slt", date(2026, 3, 1), SqlUnitOfWork(uows), policy)
    assert (slt.children, slt.enough_data, slt.to_support.median_days) == (3, False, None)

    assert await refresh_estimates(SqlUnitOfWork(uows), today=date(2026, 3, 1), policy=policy, source="/w") == 3
    assert await refresh_estimates(SqlUnitOfWork(uows), today=date(2026, 3, 1), policy=policy, source="/w") == 0
    assert await refresh_estimates(SqlUnitOfWork(uows), today=date(2026, 3, 2), policy=policy, source="/w") == 0
    events = {e["service_id"]: e for e in await sent(engine)}
    assert set(events) == {"svc-camhs", "svc-ehc", "svc-slt"}
    camhs = WaitEstimateV1.model_validate({k: v for k, v in events["svc-camhs"].items()
                                           if k not in ("topic", "key", "subject")})  # fmt: skip
    assert (events["svc-camhs"]["topic"], events["svc-camhs"]["key"], events["svc-camhs"]["subject"]) == (
        "waitlists.alerts.v1", "svc-camhs", "svc-camhs")  # fmt: skip
    assert (camhs.children, camhs.enough_data, camhs.to_support_median_days, camhs.to_support_p90_days) == (
        22, True, 22, 40)  # fmt: skip
    slt_event = events["svc-slt"]
    assert (slt_event["children"], slt_event["enough_data"], slt_event["to_support_median_days"]) == (None, False, None)
