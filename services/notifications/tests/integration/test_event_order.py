"""A referral's events reach an endpoint in version order even when they arrive out of it (after the broker
lost one and its producer published it again), never twice, and a version that never comes stops holding
the later ones back after the hold limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from notifications.adapters.orm import held_events
from notifications.service_layer.fanout import HeldEvents, held_summary, release_overdue
from send_devkit.webhook_receiver import Receiver

from .conftest import consume, referral_event
from .test_webhooks import dispatching, register, until


async def held(app: Any) -> int:
    async with app.state.runtime.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(held_events))).scalar_one())


async def test_an_early_version_waits_for_the_one_before_it(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await register(api, receiver, "/order")
    v1, v2, v3, v4 = (
        referral_event("o1", v, s) for v, s in enumerate(["submitted", "accepted", "scheduled", "in_progress"], 1)
    )
    await consume(app, v1, v3, v4)
    assert await held(app) == 2
    await consume(app, v2, v3, v1)  # the lost one comes back, with repeats of what is held or sent
    assert await held(app) == 0
    async with dispatching(app):
        await until(lambda: len(receiver.successes("/order")) == 4, "four deliveries")
    got = receiver.successes("/order")
    assert [r.body["data"]["version"] for r in got] == [1, 2, 3, 4]
    assert len({r.webhook_id for r in receiver.received}) == 4, "nothing sent twice"


async def test_a_version_that_never_comes_stops_holding_the_rest_back(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await register(api, receiver, "/gap")
    await consume(app, referral_event("g1", 1, "submitted"), referral_event("g1", 3, "scheduled"),
                  referral_event("g1", 4, "in_progress"))  # fmt: skip
    watch = HeldEvents(
        app.state.unit_of_work,
        hold_limit=timedelta(hours=1),
        referral_link_template="{referral_id}",
        after=lambda: None,
    )
    async with app.state.unit_of_work() as uow:
        count, _waited = await held_summary(uow)
    assert count == 2
    watch._held = count
    assert watch.status() is not None and watch.status().startswith("healing")  # type: ignore[union-attr]
    async with app.state.unit_of_work() as uow:
        assert await release_overdue(uow, hold_limit=timedelta(hours=1), referral_link_template="{referral_id}") == 0
        await uow.commit()
    async with app.state.unit_of_work() as uow:
        assert await release_overdue(uow, hold_limit=timedelta(0), referral_link_template="{referral_id}") == 2
        await uow.commit()
    assert await held(app) == 0
    await consume(app, referral_event("g1", 2, "accepted"))  # too late: its successors went on without it
    async with dispatching(app):
        await until(lambda: len(receiver.successes("/gap")) == 3, "three deliveries")
    assert [r.body["data"]["version"] for r in receiver.successes("/gap")] == [1, 3, 4]
