"""Support while waiting over HTTP, on the in-memory unit of work: the directory's interim offers and predicted
waits, a referral's signposts and their take-up, and the family view's wait and take-up button."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx

from referrals.domain.codes import NeedCode
from referrals.domain.interim import InterimOffer, Signpost, SignpostTrigger, WaitEstimate
from send_shared.auth import Principal, Role

from .fakes import FakeUnitOfWork
from .test_family_routes import Who, csrf_of, new_link
from .test_family_routes import app as app
from .test_family_routes import http as http
from .test_family_routes import settings as settings
from .test_family_routes import who as who
from .test_family_services import put_referral
from .test_family_services import uow as uow
from .test_services import CAMHS, OTHER_SCHOOL, SCHOOL

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
OFFER = InterimOffer(
    "io-workshops", "svc-camhs", CAMHS, "Worry workshops for parents", "Four evening sessions for parents.",
    (NeedCode.OTH, NeedCode.SEMH), contact_phone="01632 960 210", version=1,
)  # fmt: skip
TAKEN_UP = "uk.send.referral.signpost_taken_up.v1"


def told_wait(uow: FakeUnitOfWork, median: int, p90: int) -> None:
    uow.committed.estimates["svc-camhs"] = WaitEstimate(
        "svc-camhs", date(2026, 3, 1), 26, 40, True, to_support_median_days=median, to_support_p90_days=p90
    )


def signposted(uow: FakeUnitOfWork, referral_id: str) -> None:
    uow.committed.offers[OFFER.id] = OFFER
    uow.committed.signposts[(referral_id, OFFER.id)] = Signpost(
        referral_id, OFFER.id, CAMHS, SignpostTrigger.CLOCK_BREACH_IMMINENT, AT
    )


async def test_the_directory_lists_each_services_wait(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    told_wait(uow, 61, 118)
    services = {s["id"]: s for s in (await http.get("/v1/directory/services")).json()}
    camhs = services["svc-camhs"]["wait_estimate"]
    assert (camhs["to_support_median_days"], camhs["to_support_p90_days"], camhs["enough_data"]) == (61, 118, True)
    assert camhs["summary"] == "Most children wait about 9 weeks; 9 in 10 start within 17 weeks."
    ehc = services["svc-ehc"]["wait_estimate"]
    assert (ehc["enough_data"], ehc["to_support_p90_days"]) == (False, None)
    assert ehc["summary"] == "Not enough data yet to say how long children wait."


async def test_offers_are_listed_and_kept_by_the_services_admin(
    http: httpx.AsyncClient, uow: FakeUnitOfWork, who: Who
) -> None:
    body = {
        "service_id": "svc-camhs", "provider_org_id": OTHER_SCHOOL, "name": "Lunch club",
        "description": "A quiet lunch club.", "needs": ["SEMH"], "contact_url": "https://school.example/club",
    }  # fmt: skip
    who.principal = Principal("admin@school", SCHOOL, Role.ADMIN)
    refused = await http.put("/v1/directory/interim-offers/io-club", json=body)
    assert refused.status_code == 403
    who.principal = Principal("admin@camhs", CAMHS, Role.ADMIN)
    saved = await http.put("/v1/directory/interim-offers/io-club", json=body)
    assert saved.status_code == 200, saved.text
    assert (saved.json()["id"], saved.json()["version"], saved.json()["urgencies"]) == ("io-club", 1, [])
    no_way_in = await http.put("/v1/directory/interim-offers/io-club", json={**body, "contact_url": None})
    assert no_way_in.status_code == 422 and no_way_in.json()["errors"][0]["field"] == "contact_phone"
    listed = await http.get("/v1/directory/interim-offers")
    assert [o["id"] for o in listed.json()] == ["io-club"]


async def test_a_referral_shows_its_wait_and_signposts_and_a_party_records_a_take_up(
    http: httpx.AsyncClient, uow: FakeUnitOfWork, who: Who
) -> None:
    referral = put_referral(uow)
    told_wait(uow, 20, 50)
    signposted(uow, referral.id)
    shown = (await http.get(f"/v1/referrals/{referral.id}")).json()
    assert shown["wait_estimate"]["summary"] == "Most children wait about 3 weeks; 9 in 10 start within 8 weeks."
    [signpost] = shown["signposts"]
    assert (signpost["offer_id"], signpost["name"], signpost["trigger"], signpost["taken_up_at"]) == (
        OFFER.id, OFFER.name, "clock_breach_imminent", None,
    )  # fmt: skip
    missing = await http.post(f"/v1/referrals/{referral.id}/signposts/io-nothing/take-up")
    assert missing.status_code == 404
    taken = await http.post(f"/v1/referrals/{referral.id}/signposts/{OFFER.id}/take-up")
    assert taken.status_code == 200, taken.text
    assert taken.json()["taken_up_by"] == "referrer"
    assert [e.data["recorded_by"] for e, _ in uow.committed.published if e.type == TAKEN_UP] == ["referrer"]
    who.principal = Principal("teacher@other", OTHER_SCHOOL, Role.REFERRER)
    stranger = await http.post(f"/v1/referrals/{referral.id}/signposts/{OFFER.id}/take-up")
    assert stranger.status_code == 404


async def test_the_family_page_says_how_long_children_wait_and_offers_help(
    http: httpx.AsyncClient, uow: FakeUnitOfWork
) -> None:
    referral = put_referral(uow)
    told_wait(uow, 61, 118)
    signposted(uow, referral.id)
    _, token = await new_link(http, uow, referral.id)
    page = await http.get(f"/family/{token}")
    assert "Most children wait about 9 weeks; 9 in 10 start within 17 weeks." in page.text
    assert "Help while you wait" in page.text and OFFER.name in page.text and "01632 960 210" in page.text
    assert referral.id not in page.text
    form = {"csrf": await csrf_of(page), "request": "1", "offer": OFFER.id}
    assert (await http.post(f"/family/{token}/take-up", data={**form, "csrf": "0" * 64})).status_code == 403
    assert (await http.post(f"/family/{token}/take-up", data={**form, "request": "2"})).status_code == 404
    assert not [e for e, _ in uow.committed.published if e.type == TAKEN_UP]
    done = await http.post(f"/family/{token}/take-up", data=form, headers={"origin": "http://test"})
    assert done.status_code == 200 and "You told us you are using this." in done.text
    assert [e.data["recorded_by"] for e, _ in uow.committed.published if e.type == TAKEN_UP] == ["family"]
