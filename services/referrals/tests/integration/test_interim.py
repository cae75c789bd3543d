"""Support while waiting on a migrated PostgreSQL and SQLite (issue 18): the seeded interim offers, the wait estimate
waitlists tells (through the consumer's handler in its transaction), the estimate in the directory and in the
submission's answer, signposting on acceptance with a long wait and on a clock nearing breach (each an event in the
outbox), and a take-up."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import select

from referrals.adapters.orm import outbox
from referrals.bootstrap import waitlists_event_handler
from send_shared.db import session_factory
from send_shared.events.envelope import CloudEvent

from .conftest import CAMHS, SCHOOL, bearer, move, referral_body, submit

# svc-camhs-core's own offers first, then every other seeded offer for SEMH, by id (seed/directory.json).
FITTING = [
    "io-camhs-parent-workshops",
    "io-family-voice-peer-support",
    "io-camhs-ed-support-line",
    "io-family-voice-ehc-advice",
    "io-trust-ep-consultation",
]


async def handle(client: httpx.AsyncClient, event: CloudEvent) -> None:
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    async with session_factory(engine)() as session, session.begin():
        await waitlists_event_handler("/send/referrals")(event, session)


def estimate(as_of: str, p90: int, median: int = 30) -> CloudEvent:
    data = {
        "service_id": "svc-camhs-core", "as_of": as_of, "window_weeks": 26, "children": 40, "enough_data": True,
        "to_support_median_days": median, "to_support_p90_days": p90,
    }  # fmt: skip
    return CloudEvent(type="uk.send.waitlist.wait_estimate.v1", source="/send/waitlists", subject="svc-camhs-core",
                      data=data)  # fmt: skip


def breach_imminent(referral_id: str) -> CloudEvent:
    data = {
        "referral_id": referral_id, "clock": "cypmh_4w", "service_id": "svc-camhs-core", "receiving_org_id": CAMHS,
        "referrer_org_id": SCHOOL, "target_days": 28, "start_date": "2026-02-01", "breach_date": "2026-03-01",
        "waiting_days": 24, "raised_on": "2026-02-25",
    }  # fmt: skip
    return CloudEvent(type="uk.send.waitlist.clock_breach_imminent.v1", source="/send/waitlists",
                      subject=referral_id, data=data)  # fmt: skip


async def events_of(client: httpx.AsyncClient, referral_id: str, event_type: str) -> list[dict[str, Any]]:
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = (
            await conn.execute(
                select(outbox.store.c.headers, outbox.store.c.payload)
                .where(outbox.store.c.message_key == referral_id)
                .order_by(outbox.store.c.position)
            )
        ).all()
    found = []
    for headers, payload in rows:
        kind = dict(headers)["ce_type"] if isinstance(headers, dict) else json.loads(headers)["ce_type"]
        if kind == event_type:
            found.append(json.loads(bytes(payload)))
    return found


async def test_offers_are_seeded_and_the_newest_estimate_shown(client: httpx.AsyncClient) -> None:
    offers = (await client.get("/v1/directory/interim-offers", headers=bearer(SCHOOL, "referrer"))).json()
    assert {o["id"] for o in offers} >= set(FITTING)
    voluntary = next(o for o in offers if o["id"] == "io-family-voice-peer-support")
    assert (voluntary["service_id"], voluntary["provider_org_id"]) == ("svc-camhs-core", "org-family-voice")
    before = await submit(client, referral_body(nhs_number="9434765927"))  # another child
    assert before.status_code == 201 and before.json()["wait_estimate"]["as_of"] is None  # none was made yet
    await handle(client, estimate("2026-03-02", 120, median=61))
    await handle(client, estimate("2026-03-01", 10))  # older, told late: ignored
    services = {
        s["id"]: s for s in (await client.get("/v1/directory/services", headers=bearer(SCHOOL, "referrer"))).json()
    }
    shown = services["svc-camhs-core"]["wait_estimate"]
    assert (shown["as_of"], shown["to_support_p90_days"]) == ("2026-03-02", 120)
    assert shown["summary"] == "Most children wait about 9 weeks; 9 in 10 start within 18 weeks."
    assert services["svc-ehc-assessment"]["wait_estimate"]["enough_data"] is False
    submitted = await submit(client)
    assert submitted.status_code == 201
    assert submitted.json()["wait_estimate"] == shown


async def test_accepted_with_a_long_wait_is_signposted_and_a_take_up_published(client: httpx.AsyncClient) -> None:
    await handle(client, estimate("2026-03-02", 85))  # over 12 weeks (84 days)
    referral_id = (await submit(client)).json()["id"]
    accepted = await move(client, referral_id, 1, CAMHS, "receiver", status="accepted")
    assert accepted.status_code == 200, accepted.text
    [signposted] = await events_of(client, referral_id, "uk.send.referral.signposted.v1")
    assert (signposted["trigger"], signposted["offer_ids"]) == ("long_wait", FITTING)
    shown = (await client.get(f"/v1/referrals/{referral_id}", headers=bearer(SCHOOL, "referrer"))).json()
    assert [s["offer_id"] for s in shown["signposts"]] == FITTING
    taken = await client.post(
        f"/v1/referrals/{referral_id}/signposts/io-family-voice-peer-support/take-up", headers=bearer(CAMHS, "receiver")
    )
    assert taken.status_code == 200, taken.text
    [event] = await events_of(client, referral_id, "uk.send.referral.signpost_taken_up.v1")
    assert (event["offer_id"], event["provider_org_id"], event["recorded_by"]) == (
        "io-family-voice-peer-support", "org-family-voice", "receiver",
    )  # fmt: skip


async def test_a_clock_nearing_breach_signposts_in_the_consumers_transaction(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client, referral_body("9000000009"))).json()["id"]
    await handle(client, breach_imminent(referral_id))
    await handle(client, breach_imminent(referral_id))  # told again: nothing new to signpost
    [signposted] = await events_of(client, referral_id, "uk.send.referral.signposted.v1")
    assert (signposted["trigger"], signposted["offer_ids"]) == ("clock_breach_imminent", FITTING)
    assert (signposted["referrer_org_id"], signposted["receiving_org_id"]) == (SCHOOL, CAMHS)
