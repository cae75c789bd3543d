"""Erasure and subject access over HTTP, on the in-memory unit of work."""

from __future__ import annotations

import httpx

from send_shared.auth import Role

from .fakes import FakeUnitOfWork
from .test_routes import BODY, Caller, caller, http, uow
from .test_services import CAMHS, SCHOOL

__all__ = ["caller", "http", "uow"]  # the fixtures, shared with the other route tests


async def submitted(http: httpx.AsyncClient, caller: Caller, key: str = "k-1") -> str:
    caller.act_as(SCHOOL, Role.REFERRER)
    created = await http.post("/v1/referrals", json=BODY, headers={"idempotency-key": key})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def withdrawn(http: httpx.AsyncClient, caller: Caller) -> str:
    referral_id = await submitted(http, caller)
    moved = await http.post(
        f"/v1/referrals/{referral_id}/status", json={"status": "withdrawn"}, headers={"if-match": '"1"'}
    )
    assert moved.status_code == 200, moved.text
    return referral_id


async def test_an_erased_referral_reads_as_its_tombstone(
    http: httpx.AsyncClient, caller: Caller, uow: FakeUnitOfWork
) -> None:
    referral_id = await withdrawn(http, caller)
    caller.act_as(CAMHS, Role.RECEIVER)
    erased = await http.post(f"/v1/referrals/{referral_id}/erasure")
    assert erased.status_code == 200, erased.text
    assert erased.json()["referral_id"] == referral_id
    assert erased.json()["erased_by_org_id"] == CAMHS
    shown = await http.get(f"/v1/referrals/{referral_id}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["child"] == {"erased_at": erased.json()["erased_at"], "erased_by_org_id": CAMHS}
    assert shown.json()["reason"] is None
    assert shown.json()["status"] == "withdrawn"
    assert "Sam" not in shown.text and "Taylor" not in shown.text and "9434765919" not in shown.text
    assert (await http.get(f"/v1/referrals/{referral_id}/history")).status_code == 200
    again = await http.post(f"/v1/referrals/{referral_id}/erasure")
    assert again.json() == erased.json()


async def test_an_open_referral_is_refused_with_its_rule(
    http: httpx.AsyncClient, caller: Caller, uow: FakeUnitOfWork
) -> None:
    referral_id = await submitted(http, caller)
    refused = await http.post(f"/v1/referrals/{referral_id}/erasure")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["rule"] == "referral_open"
    assert uow.committed.people[referral_id].given_name == "Sam"


async def test_a_stranger_finds_no_referral_to_erase(http: httpx.AsyncClient, caller: Caller) -> None:
    referral_id = await withdrawn(http, caller)
    caller.act_as("org-other-school", Role.REFERRER)
    assert (await http.post(f"/v1/referrals/{referral_id}/erasure")).status_code == 404
    caller.act_as(CAMHS, Role.REFERRER)
    assert (await http.post(f"/v1/referrals/{referral_id}/erasure")).status_code == 403


async def test_subject_access_takes_the_identifier_in_the_body(http: httpx.AsyncClient, caller: Caller) -> None:
    referral_id = await submitted(http, caller)
    exported = await http.post("/v1/subject-access", json={"nhs_number": "943 476 5919"})
    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert body["organisation_id"] == SCHOOL
    [record] = body["referrals"]
    assert record["referral"]["id"] == referral_id
    assert record["personal_data"]["given_name"] == "Sam"
    assert record["personal_data"]["reason"] == BODY["reason"]
    assert [h["status"] for h in record["history"]] == ["submitted"]
    assert [c["note"] for c in record["consents"]] == [BODY["consent"]["scope"]]  # type: ignore[index]
    assert [e["action"] for e in record["audit_log"]] == ["subject_access"]
    caller.act_as("org-other-school", Role.REFERRER)
    other = await http.post("/v1/subject-access", json={"nhs_number": "9434765919"})
    assert other.status_code == 200
    assert other.json()["referrals"] == []


async def test_subject_access_needs_a_valid_identifier(http: httpx.AsyncClient, caller: Caller) -> None:
    caller.act_as(CAMHS, Role.RECEIVER)
    for body in ({}, {"nhs_number": "1234567890"}, {"upn": "not a upn"}, {"nhs_number": "9434765919", "name": "x"}):
        refused = await http.post("/v1/subject-access", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    caller.act_as(CAMHS, Role.OPS)
    assert (await http.post("/v1/subject-access", json={"nhs_number": "9434765919"})).status_code == 403
