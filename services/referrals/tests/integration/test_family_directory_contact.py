"""How a family reaches each service: optional contact details in the directory (shown on the family view), kept
out of the public service event."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from referrals.adapters.orm import outbox

from .conftest import CAMHS, LA, bearer

SERVICE = {
    "organisation_id": CAMHS,
    "name": "CAMHS neurodevelopmental",
    "needs": ["ASD"],
    "urgencies": ["routine"],
    "clocks": [],
    "contact_phone": "01632 960 250",
    "contact_email": "neuro@northshire-camhs.example",
    "contact_url": "https://northshire-camhs.example/neuro",
}


async def test_the_seed_and_the_api_carry_each_services_contact(client: httpx.AsyncClient) -> None:
    services = {s["id"]: s for s in (await client.get("/v1/directory/services", headers=bearer(LA, "ops"))).json()}
    assert services["svc-camhs-core"]["contact_phone"] == "01632 960 200"
    assert all(s["contact_email"] and s["contact_url"] for s in services.values())
    saved = await client.put("/v1/directory/services/svc-neuro", json=SERVICE, headers=bearer(CAMHS, "admin"))
    assert saved.status_code == 200, saved.text
    assert {k: saved.json()[k] for k in ("contact_phone", "contact_email", "contact_url")} == {
        k: SERVICE[k] for k in ("contact_phone", "contact_email", "contact_url")
    }
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        event = (
            await conn.execute(select(outbox.store.c.payload).where(outbox.store.c.message_key == "svc-neuro"))
        ).scalar_one()
    assert b"neuro@northshire-camhs.example" not in (event if isinstance(event, bytes) else str(event).encode())


async def test_contact_details_are_checked(client: httpx.AsyncClient) -> None:
    for field, bad in (("contact_email", "not an address"), ("contact_url", "javascript:alert(1)"),
                       ("contact_phone", "call us")):  # fmt: skip
        refused = await client.put(
            "/v1/directory/services/svc-neuro", json={**SERVICE, field: bad}, headers=bearer(CAMHS, "admin")
        )
        assert refused.status_code == 422, (field, refused.text)
