"""The HTTP layer over the in-memory unit of work, its dependencies swapped with ``dependency_overrides``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from referrals.entrypoints.dependencies import get_settings, get_uow
from referrals.entrypoints.routers import ROUTERS
from referrals.service_layer.directory import seed_if_empty
from referrals.settings import ReferralsSettings
from send_shared.auth import Principal, Role, current_principal, organisation_lookup
from send_shared.web.problems import install_problem_handlers

from .fakes import FakeUnitOfWork
from .test_services import CAMHS, ORGANISATIONS, SCHOOL, SERVICES

BODY = {
    "service_id": "svc-camhs",
    "child": {"given_name": "Sam", "family_name": "Taylor", "date_of_birth": "2015-04-12", "nhs_number": "9434765919"},
    "primary_need": "SEMH",
    "reason": "Persistent anxiety affecting attendance.",
    "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "Referral to CAMHS"},
}


class Caller:
    """Who the test acts as, and which organisations the directory knows."""

    def __init__(self) -> None:
        self.principal = Principal("teacher@school", SCHOOL, Role.REFERRER)
        self.known = {o.id for o in ORGANISATIONS}

    def act_as(self, organisation_id: str, role: Role) -> None:
        self.principal = Principal(f"someone@{organisation_id}", organisation_id, role)


@pytest.fixture
def caller() -> Caller:
    return Caller()


@pytest.fixture
async def uow() -> FakeUnitOfWork:
    fake = FakeUnitOfWork()
    await seed_if_empty(ORGANISATIONS, SERVICES, fake, source="/test")
    return fake


@pytest.fixture
async def http(uow: FakeUnitOfWork, caller: Caller) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)

    async def is_known(organisation_id: str) -> bool:
        return organisation_id in caller.known

    app.dependency_overrides[get_uow] = lambda: uow
    app.dependency_overrides[get_settings] = lambda: ReferralsSettings()
    app.dependency_overrides[current_principal] = lambda: caller.principal
    app.dependency_overrides[organisation_lookup] = lambda: is_known
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_a_referrer_submits_and_the_receiver_accepts(
    http: httpx.AsyncClient, uow: FakeUnitOfWork, caller: Caller
) -> None:
    created = await http.post("/v1/referrals", json=BODY, headers={"idempotency-key": "k-1"})
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    assert created.headers["etag"] == '"1"'
    assert created.headers["location"] == f"http://test/v1/referrals/{referral_id}"
    caller.act_as(CAMHS, Role.RECEIVER)
    moved = await http.post(
        f"/v1/referrals/{referral_id}/status", json={"status": "accepted"}, headers={"if-match": '"1"'}
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["status"], moved.headers["etag"]) == ("accepted", '"2"')
    assert uow.committed.referrals[referral_id].version == 2


async def test_a_duplicate_links_the_open_referral_for_its_referrer(http: httpx.AsyncClient) -> None:
    first = (await http.post("/v1/referrals", json=BODY, headers={"idempotency-key": "k-1"})).json()
    again = await http.post("/v1/referrals", json=BODY, headers={"idempotency-key": "k-2"})
    assert again.status_code == 409
    assert again.json()["existing_referral"] == f"http://test/v1/referrals/{first['id']}"


async def test_an_organisation_missing_from_the_directory_is_refused(
    http: httpx.AsyncClient, uow: FakeUnitOfWork, caller: Caller
) -> None:
    caller.known.discard(SCHOOL)
    refused = await http.post("/v1/referrals", json=BODY, headers={"idempotency-key": "k-1"})
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("unknown-organisation")
    assert uow.committed.referrals == {}


async def test_an_organisations_admin_reads_its_own_audit_only(http: httpx.AsyncClient, caller: Caller) -> None:
    caller.act_as(CAMHS, Role.ADMIN)
    assert (await http.get("/v1/audit")).status_code == 200
    assert (await http.get("/v1/audit", params={"organisation_id": SCHOOL})).status_code == 403
    caller.known.discard(CAMHS)
    assert (await http.get("/v1/audit")).status_code == 403
