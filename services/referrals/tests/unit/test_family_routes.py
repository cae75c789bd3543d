"""The family view over HTTP, on the in-memory unit of work: the link API (no token in any answer), the page and its
headers, refusals, rate limits and the forms' CSRF protection."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from referrals.domain.consent import ConsentStatus
from referrals.entrypoints.dependencies import get_settings, get_uow, get_uow_factory
from referrals.entrypoints.routers import ROUTERS
from referrals.settings import ReferralsSettings
from send_shared.auth import Principal, Role, current_principal, organisation_lookup
from send_shared.web.access_log import AccessLog
from send_shared.web.problems import install_problem_handlers

from .fakes import FakeUnitOfWork
from .test_family_services import put_referral, queued_token
from .test_family_services import uow as uow  # the fixture
from .test_services import CAMHS, ORGANISATIONS, OTHER_SCHOOL, SCHOOL


class Who:
    def __init__(self) -> None:
        self.principal = Principal("teacher@school", SCHOOL, Role.REFERRER)


@pytest.fixture
def who() -> Who:
    return Who()


@pytest.fixture
def settings() -> list[ReferralsSettings]:
    """The app's settings (a list, to swap them): the limits roomy unless a test says otherwise."""
    return [ReferralsSettings(family_view_per_ip_per_minute=100, family_view_per_link_per_minute=100)]


@pytest.fixture
def app() -> FastAPI:
    return FastAPI()


@pytest.fixture
async def http(
    app: FastAPI, uow: FakeUnitOfWork, who: Who, settings: list[ReferralsSettings]
) -> AsyncIterator[httpx.AsyncClient]:
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    known = {o.id for o in ORGANISATIONS}

    async def is_known(organisation_id: str) -> bool:
        return organisation_id in known

    app.dependency_overrides[get_uow] = lambda: uow
    app.dependency_overrides[get_uow_factory] = lambda: lambda: uow
    app.dependency_overrides[get_settings] = lambda: settings[0]
    app.dependency_overrides[current_principal] = lambda: who.principal
    app.dependency_overrides[organisation_lookup] = lambda: is_known
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def new_link(http: httpx.AsyncClient, uow: FakeUnitOfWork, referral_id: str, **body: object) -> tuple[str, str]:
    made = await http.post(f"/v1/referrals/{referral_id}/family-links", json={"email": "parent@example.com", **body})
    assert made.status_code == 201, made.text
    return made.json()["id"], queued_token(uow, made.json()["id"])


async def test_the_link_api_never_shows_a_token(http: httpx.AsyncClient, uow: FakeUnitOfWork, who: Who) -> None:
    referral = put_referral(uow)
    link_id, token = await new_link(http, uow, referral.id, expires_in_days=7)
    listed = await http.get(f"/v1/referrals/{referral.id}/family-links")
    assert listed.status_code == 200 and [x["id"] for x in listed.json()] == [link_id]
    assert listed.json()[0]["state"] == "active" and token not in listed.text
    assert set(listed.json()[0]) == {"id", "referral_id", "issued_by_org_id", "created_at", "expires_at", "state",
                                     "revoked_at", "last_used_at"}  # fmt: skip
    who.principal = Principal("x", CAMHS, Role.RECEIVER)
    revoked = await http.delete(f"/v1/referrals/{referral.id}/family-links/{link_id}")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked" and token not in revoked.text
    assert (await http.get(f"/family/{token}")).status_code == 410


async def test_the_link_api_refuses_and_validates(http: httpx.AsyncClient, uow: FakeUnitOfWork, who: Who) -> None:
    referral = put_referral(uow)
    no_email = await http.post(f"/v1/referrals/{referral.id}/family-links", json={})
    assert no_email.status_code == 422
    assert no_email.json()["errors"][0]["field"] == "email"
    assert no_email.json()["errors"][0]["rule"] == "contact_email_required"
    too_long = await http.post(
        f"/v1/referrals/{referral.id}/family-links", json={"email": "a@b.co", "expires_in_days": 91}
    )
    assert too_long.status_code == 422
    bad = await http.post(f"/v1/referrals/{referral.id}/family-links", json={"email": "not an email"})
    assert bad.status_code == 422
    who.principal = Principal("x", OTHER_SCHOOL, Role.REFERRER)
    assert (await http.post(f"/v1/referrals/{referral.id}/family-links", json={"email": "a@b.co"})).status_code == 404
    assert (await http.get(f"/v1/referrals/{referral.id}/family-links")).status_code == 404
    who.principal = Principal("x", SCHOOL, Role.RECEIVER)
    assert (await http.get(f"/v1/referrals/{referral.id}/family-links")).status_code == 403
    assert not uow.committed.family_links


async def test_the_page_in_plain_words_with_its_headers(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    referral = put_referral(uow)
    stranger = put_referral(uow, child_ref="e" * 32, service_id="svc-ehc")
    _, token = await new_link(http, uow, referral.id)
    page = await http.get(f"/family/{token}")
    assert page.status_code == 200
    assert "CAMHS core" in page.text and "The request for help has been sent to the service." in page.text
    assert "EHC assessment" not in page.text and stranger.id not in page.text and referral.id not in page.text
    assert "Sam" not in page.text and "9434765919" not in page.text
    assert "<script" not in page.text
    h = page.headers
    assert h["cache-control"] == "no-store" and h["x-robots-tag"] == "noindex, nofollow"
    assert h["referrer-policy"] == "same-origin" and h["x-frame-options"] == "DENY"
    assert (
        "default-src 'none'" in h["content-security-policy"]
        and "frame-ancestors 'none'" in h["content-security-policy"]
    )
    assert "unsafe-inline" not in h["content-security-policy"]
    assert "family_form=" in h["set-cookie"] and "httponly" in h["set-cookie"].lower()
    assert "samesite=strict" in h["set-cookie"].lower()


@pytest.mark.parametrize("token", ["x" * 43, "short", "a" * 43 + "!"])
async def test_an_unknown_token_gets_the_friendly_404(http: httpx.AsyncClient, uow: FakeUnitOfWork, token: str) -> None:
    put_referral(uow)
    page = await http.get(f"/family/{token}")
    assert page.status_code == 404 and "This link does not work" in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"


async def test_an_expired_link_is_410(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    referral = put_referral(uow)
    link_id, token = await new_link(http, uow, referral.id, expires_in_days=1)
    link = uow.committed.family_links[link_id]
    uow.committed.family_links[link_id] = replace(link, expires_at=link.created_at - timedelta(seconds=1))
    page = await http.get(f"/family/{token}")
    assert page.status_code == 410 and "This link does not work" in page.text


async def test_rate_limits_per_link_and_per_address(
    http: httpx.AsyncClient, app: FastAPI, uow: FakeUnitOfWork, settings: list[ReferralsSettings]
) -> None:
    settings[0] = ReferralsSettings(family_view_per_ip_per_minute=100, family_view_per_link_per_minute=3)
    referral = put_referral(uow)
    _, token = await new_link(http, uow, referral.id)
    answers = [(await http.get(f"/family/{token}")).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = await http.get(f"/family/{token}")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "Please wait" in limited.text and limited.headers["cache-control"] == "no-store"
    # Guessing: every other token from this address still counts against the address.
    settings[0] = ReferralsSettings(family_view_per_ip_per_minute=2, family_view_per_link_per_minute=100)
    del app.state.family_limits  # the new limits
    guesses = [(await http.get(f"/family/{'g' * 42}{i}")).status_code for i in range(3)]
    assert guesses == [404, 404, 429]


async def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def test_the_contact_form_needs_its_csrf_token(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    referral = put_referral(uow)
    _, token = await new_link(http, uow, referral.id)
    csrf = await csrf_of(await http.get(f"/family/{token}"))
    form = {"csrf": csrf, "email": "new@example.com", "phone": "07700 900123", "preference": "text"}
    assert (await http.post(f"/family/{token}/contact", data={**form, "csrf": "0" * 64})).status_code == 403
    cross = await http.post(f"/family/{token}/contact", data=form, headers={"origin": "https://evil.example"})
    assert cross.status_code == 403
    cookie = http.cookies.get("family_form")
    http.cookies.clear()
    assert (await http.post(f"/family/{token}/contact", data=form)).status_code == 403
    http.cookies.set("family_form", str(cookie), domain="test.local", path="/family")
    assert (
        referral.id not in uow.committed.family_contacts
        or uow.committed.family_contacts[referral.id].email == "parent@example.com"
    )
    saved = await http.post(f"/family/{token}/contact", data=form, headers={"origin": "http://test"})
    assert saved.status_code == 200 and "We have saved how to get in touch." in saved.text
    contact = uow.committed.family_contacts[referral.id]
    assert (contact.email, contact.phone, contact.preference) == ("new@example.com", "07700 900123", "text")
    wrong = await http.post(f"/family/{token}/contact", data={**form, "email": "nope"})
    assert wrong.status_code == 422 and "Enter an email address" in wrong.text
    assert uow.committed.family_contacts[referral.id].email == "new@example.com"


async def test_withdrawal_asks_first_then_withdraws(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    referral = put_referral(uow)
    _, token = await new_link(http, uow, referral.id)
    page = await http.get(f"/family/{token}")
    assert f'href="/family/{token}/withdraw"' in page.text
    confirm = await http.get(f"/family/{token}/withdraw")
    assert confirm.status_code == 200 and "Are you sure" in confirm.text
    assert uow.committed.consents[referral.id][-1].status is ConsentStatus.GIVEN  # asking changed nothing
    assert (await http.post(f"/family/{token}/withdraw", data={})).status_code == 403
    done = await http.post(f"/family/{token}/withdraw", data={"csrf": await csrf_of(confirm)})
    assert done.status_code == 200 and "You have said no to sharing" in done.text
    assert uow.committed.consents[referral.id][-1].status is ConsentStatus.WITHDRAWN
    again = await http.get(f"/family/{token}/withdraw", follow_redirects=False)
    assert again.status_code == 303


async def test_the_token_never_reaches_the_access_log(
    http: httpx.AsyncClient, app: FastAPI, uow: FakeUnitOfWork, caplog: pytest.LogCaptureFixture
) -> None:
    app.add_middleware(AccessLog)
    referral = put_referral(uow)
    _, token = await new_link(http, uow, referral.id)
    caplog.clear()  # the link's own request may be logged already when an earlier test set the level
    with caplog.at_level(logging.INFO, logger="send.access"):
        assert (await http.get(f"/family/{token}")).status_code == 200
        assert (await http.get(f"/family/{token}/withdraw")).status_code == 200
    lines = [r for r in caplog.records if r.name == "send.access"]
    assert len(lines) == 2 and all(r.http_path.startswith("/family/{token}") for r in lines)  # type: ignore[attr-defined]
    assert token not in caplog.text
