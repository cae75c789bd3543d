"""The referral page an email links to: readable words for a signed-in referrer or receiver, under the same
rules as the JSON API (who may read, personal details, every read audited); everyone else is sent to sign in
or told there is nothing here."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from referrals.adapters.orm import audit_log
from send_devkit.tokens import mint_token

from .conftest import CAMHS, LA, SCHOOL, bearer, move, submit


def signed_in(client: httpx.AsyncClient, org: str, role: str) -> httpx.AsyncClient:
    client.cookies.set("send_session", mint_token(org, role))
    return client


async def audited_reads(client: httpx.AsyncClient) -> int:
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(audit_log))).scalar_one())


async def test_the_receiver_reads_the_referral_in_plain_words(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    await move(client, referral_id, 1, CAMHS, "receiver", status="accepted")
    before = await audited_reads(client)
    page = await signed_in(client, CAMHS, "receiver").get(f"/referrals/{referral_id}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Accepted: waiting for support to start" in page.text
    assert "Riverside Primary" in page.text and "Sam Taylor" in page.text
    assert "script" not in page.headers["content-security-policy"].replace("script-src", "")
    assert await audited_reads(client) == before + 1, "a page read is audited like an API read"
    listing = await client.get("/referrals/")
    assert listing.status_code == 200 and f"/referrals/{referral_id}" in listing.text


async def test_others_are_sent_to_sign_in_or_find_nothing(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    anonymous = await client.get(f"/referrals/{referral_id}")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/signin?next=%2Freferrals%2F{referral_id}"
    bearer_only = await client.get(
        f"/referrals/{referral_id}", headers={"authorization": f"Bearer {mint_token(SCHOOL, 'referrer')}"}
    )
    assert bearer_only.status_code == 303, "pages are for signed-in browsers"
    other_school = await signed_in(client, "org-millbrook-primary", "referrer").get(f"/referrals/{referral_id}")
    assert other_school.status_code == 404 and "Sam Taylor" not in other_school.text
    ops = await signed_in(client, LA, "ops").get(f"/referrals/{referral_id}")
    assert ops.status_code == 403
    unknown = await signed_in(client, "org-nobody", "referrer").get(f"/referrals/{referral_id}")
    assert unknown.status_code == 403


async def test_signing_in_to_the_referrals_pages_offers_referrers_and_receivers(client: httpx.AsyncClient) -> None:
    page = await client.get("/signin", params={"next": "/referrals/"})
    assert page.status_code == 200
    assert 'value="referrer"' in page.text and 'value="receiver"' in page.text and 'value="ops"' not in page.text
    assert "Riverside Primary" in page.text


async def test_pages_spend_the_organisations_read_budget(client: httpx.AsyncClient) -> None:
    """Issue #13, rate limits: a page read signed in by cookie is a read of the organisation's budget, as an API
    read is; over it, a 429 problem with Retry-After, and the API's reads of that organisation are refused too."""
    from send_shared.web.rate_limits import Limit, RateLimits

    referral_id = (await submit(client)).json()["id"]
    client.app.state.verifier.limits = RateLimits(Limit(0, 1), Limit(0.5, 2))  # type: ignore[attr-defined]
    reader = signed_in(client, CAMHS, "receiver")
    assert [(await reader.get(f"/referrals/{referral_id}")).status_code for _ in range(2)] == [200, 200]
    for path in (f"/referrals/{referral_id}", "/referrals/"):
        refused = await reader.get(path)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        assert "Sam Taylor" not in refused.text
    reader.cookies.clear()
    api = await client.get(f"/v1/referrals/{referral_id}", headers=bearer(CAMHS, "receiver"))
    assert api.status_code == 429, "pages and the API share one budget"
    other = await signed_in(client, SCHOOL, "referrer").get(f"/referrals/{referral_id}")
    assert other.status_code == 200, "another organisation has a budget of its own"
