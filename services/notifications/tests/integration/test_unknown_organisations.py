"""Issue #13, unknown organisations: a token naming an organisation that is not in the directory (as
notifications has it from the directory's events) is refused, and nothing is stored; once the
organisation's event arrives, the same token works."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from notifications.adapters.orm import contacts, endpoints, organisations
from send_devkit.webhook_receiver import Receiver

from .conftest import CAMHS, bearer, consume, organisation_event

PROBLEM = "application/problem+json"


def refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/unknown-organisation")


async def stored_for(app: Any, organisation_id: str) -> tuple[int, int]:
    async with app.state.runtime.engine.connect() as conn:
        count_endpoints = (
            await conn.execute(select(func.count()).where(endpoints.c.organisation_id == organisation_id))
        ).scalar_one()
        count_contacts = (
            await conn.execute(select(func.count()).where(contacts.c.organisation_id == organisation_id))
        ).scalar_one()
    return int(count_endpoints), int(count_contacts)


async def test_an_organisation_missing_from_the_directory_is_refused_until_its_event_arrives(
    app: Any, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    stranger = f"org-stranger-{uuid.uuid4().hex[:8]}"
    token = bearer(stranger)
    endpoint = {"url": f"{receiver.base}/stranger", "event_types": ["uk.send.referral.*"]}
    mail = {"emails": ["duty@stranger.example"]}

    refused(await api.post("/v1/endpoints", json=endpoint, headers=token))
    refused(await api.put("/v1/contacts", json=mail, headers=token))
    refused(await api.get("/v1/endpoints", headers=token))
    assert await stored_for(app, stranger) == (0, 0), "nothing stored for a refused caller"

    await consume(app, organisation_event(stranger))

    created = await api.post("/v1/endpoints", json=endpoint, headers=token)
    assert created.status_code == 201, created.text
    put = await api.put("/v1/contacts", json=mail, headers=token)
    assert put.status_code == 200, put.text
    listed = (await api.get("/v1/endpoints", headers=token)).json()
    assert [e["id"] for e in listed] == [created.json()["id"]]
    assert await stored_for(app, stranger) == (1, 1)


async def test_organisation_events_are_idempotent_and_the_newest_version_wins(app: Any) -> None:
    org = f"org-versions-{uuid.uuid4().hex[:8]}"
    await consume(app, organisation_event(org, 3), organisation_event(org, 3), organisation_event(org, 2))
    async with app.state.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(organisations.c.version).where(organisations.c.organisation_id == org))).all()
    assert [r[0] for r in rows] == [3]
    await consume(app, organisation_event(org, 4))
    async with app.state.runtime.engine.connect() as conn:
        version = (
            await conn.execute(select(organisations.c.version).where(organisations.c.organisation_id == org))
        ).scalar_one()
    assert version == 4


@pytest.mark.parametrize("organisation_id", ["Org-Camhs", "org_camhs", "-org", "org.camhs", "org-camhs%"])
async def test_an_id_no_directory_could_hold_is_unknown(api: httpx.AsyncClient, organisation_id: str) -> None:
    refused(await api.get("/v1/endpoints", headers=bearer(organisation_id)))


async def test_a_known_organisation_is_served(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/endpoints", headers=bearer(CAMHS))).status_code == 200
