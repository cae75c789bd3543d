"""The referrals API on a real database (PostgreSQL and SQLite): state change and outbox in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from referrals.adapters.orm import outbox, referral_history, referrals
from referrals.bootstrap import build_app
from referrals.entrypoints.cli import main as cli_main
from referrals.settings import ReferralsSettings
from send_shared.auth import mint_token

SCHOOL = "org-riverside-primary"
CAMHS = "org-northshire-camhs"


def bearer(org: str, role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(org, role)}"}


@pytest.fixture
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    # Through the service's own CLI, as deployments run it (in a thread: Alembic runs its own event loop).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", database_url)
        await asyncio.to_thread(cli_main, ["migrate"])
    app = build_app(
        ReferralsSettings(database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, run_workers=False)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        http.app = app  # type: ignore[attr-defined]
        yield http
    await app.state.runtime.engine.dispose()


async def count(http: httpx.AsyncClient, table: object) -> int:
    async with http.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def submit(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post(
        "/v1/referrals",
        json={"service_id": "svc-camhs-core", "nhs_number": "9434765919"},
        headers=bearer(SCHOOL, "referrer"),
    )


async def test_submit_writes_referral_history_and_outbox_together(client: httpx.AsyncClient) -> None:
    response = await submit(client)
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    assert response.json()["receiving_org_id"] == CAMHS
    assert [await count(client, t) for t in (referrals, referral_history, outbox)] == [1, 1, 1]


async def test_receiver_moves_with_if_match_and_stale_version_is_412(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    moved = await client.post(
        f"/v1/referrals/{referral_id}/status",
        json={"status": "accepted"},
        headers={**bearer(CAMHS, "receiver"), "if-match": '"1"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.headers["etag"] == '"2"'
    stale = await client.post(
        f"/v1/referrals/{referral_id}/status",
        json={"status": "in_progress"},
        headers={**bearer(CAMHS, "receiver"), "if-match": '"1"'},
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert await count(client, outbox) == 2


async def test_illegal_move_is_409_and_changes_nothing(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    response = await client.post(
        f"/v1/referrals/{referral_id}/status",
        json={"status": "completed"},
        headers={**bearer(CAMHS, "receiver"), "if-match": '"1"'},
    )
    assert response.status_code == 409
    body = response.json()
    assert body["current_status"] == "submitted" and "accepted" in body["allowed_moves"]
    assert await count(client, outbox) == 1


async def test_other_organisations_cannot_see_a_referral(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    assert (await client.get(f"/v1/referrals/{referral_id}", headers=bearer(SCHOOL, "referrer"))).status_code == 200
    foreign = await client.get(f"/v1/referrals/{referral_id}", headers=bearer("org-oakfield-high", "referrer"))
    assert foreign.status_code == 404
    assert (await client.get(f"/v1/referrals/{referral_id}")).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"service_id": "svc-camhs-core", "nhs_number": "9434765918"}, "nhs_number"),
        ({"service_id": "svc-nope", "nhs_number": "9434765919"}, "service_id"),
        (
            {"service_id": "svc-camhs-core", "nhs_number": "9434765919", "referred_at": "2999-01-01T00:00:00Z"},
            "referred_at",
        ),
        ({"service_id": "svc-camhs-core"}, "nhs_number"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    response = await client.post("/v1/referrals", json=body, headers=bearer(SCHOOL, "referrer"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}
    assert await count(client, outbox) == 0


async def test_malformed_json_is_a_problem_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/referrals",
        content=b"{not json",
        headers={**bearer(SCHOOL, "referrer"), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
