"""The consent routes over the in-memory unit of work (``dependency_overrides``): who may read and record consent,
the problems each refusal answers with, the Idempotency-Key, and the hand-off a consent scope refuses."""

from __future__ import annotations

from typing import Any

import httpx

from referrals.domain.audit import AuditAction
from send_shared.auth import Role

from .fakes import FakeUnitOfWork
from .test_routes import BODY, Caller
from .test_routes import caller as caller  # the fixtures
from .test_routes import http as http
from .test_routes import uow as uow
from .test_services import CAMHS, LA, OTHER_SCHOOL, SCHOOL

_keys = iter(range(10_000))


async def submit(http: httpx.AsyncClient, **consent: Any) -> str:
    body = {**BODY, "consent": {**BODY["consent"], **consent}}  # type: ignore[dict-item]
    created = await http.post("/v1/referrals", json=body, headers={"idempotency-key": f"s-{next(_keys)}"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def post(http: httpx.AsyncClient, referral_id: str, key: str | None = None, **body: Any) -> httpx.Response:
    return await http.post(
        f"/v1/referrals/{referral_id}/consent",
        json={"given_by": "parent", **body},
        headers={"idempotency-key": key or f"c-{next(_keys)}"},
    )


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    found: dict[str, Any] = response.json()
    return found


async def test_reading_a_referral_shows_the_consent_in_force(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    referral_id = await submit(http, scope_organisation_ids=[LA])
    shown = (await http.get(f"/v1/referrals/{referral_id}")).json()
    assert shown["consent"] == {
        "consent_version": 1,
        "status": "given",
        "given_by": "parent",
        "scope_service_ids": [],
        "scope_organisation_ids": [LA],
        "occurred_at": "2026-01-05T10:00:00Z",
    }
    listed = (await http.get("/v1/referrals")).json()["items"]
    assert listed[0]["consent"] is None  # only on a single referral, as the child's details


async def test_the_consent_history_for_the_referrals_readers_and_audited(
    http: httpx.AsyncClient, uow: FakeUnitOfWork, caller: Caller
) -> None:
    referral_id = await submit(http)
    caller.act_as(CAMHS, Role.RECEIVER)
    shown = await http.get(f"/v1/referrals/{referral_id}/consent")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["status"], body["allowed_actions"], body["referral_status"], body["referral_version"]) == (
        "given",
        ["change", "withdraw"],
        "submitted",
        1,
    )
    [event] = body["events"]
    assert {k: event[k] for k in ("consent_version", "status", "given_by", "scope_service_ids", "note")} == {
        "consent_version": 1,
        "status": "given",
        "given_by": "parent",
        "scope_service_ids": ["svc-camhs"],
        "note": "Referral to CAMHS",
    }
    assert (event["recorded_by_org_id"], event["recorded_via"]) == (SCHOOL, "api")
    assert [(e.organisation_id, e.action) for e in uow.committed.audit] == [(CAMHS, AuditAction.READ_CONSENT)]
    caller.act_as(OTHER_SCHOOL, Role.REFERRER)
    problem(await http.get(f"/v1/referrals/{referral_id}/consent"), 404)
    caller.act_as(CAMHS, Role.REFERRER)
    problem(await http.get(f"/v1/referrals/{referral_id}/consent"), 403)
    caller.act_as(SCHOOL, Role.OPS)
    problem(await http.get(f"/v1/referrals/{referral_id}/consent"), 403)
    assert len(uow.committed.audit) == 1


async def test_a_withdrawal_before_acceptance_ends_the_referral(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    referral_id = await submit(http)
    done = await post(http, referral_id, action="withdraw", note="They have moved away.")
    assert done.status_code == 201, done.text
    assert done.headers["location"] == f"http://test/v1/referrals/{referral_id}/consent"
    body = done.json()
    assert (body["status"], body["referral_status"], body["referral_version"], body["allowed_actions"]) == (
        "withdrawn",
        "withdrawn",
        2,
        [],  # a closed referral is never given consent again
    )
    shown = (await http.get(f"/v1/referrals/{referral_id}")).json()
    assert (shown["status"], shown["reason_code"], shown["consent"]["status"]) == (
        "withdrawn",
        "consent_withdrawn",
        "withdrawn",
    )
    again = problem(await post(http, referral_id, action="give"), 409)
    assert (again["consent_status"], again["allowed_actions"]) == ("withdrawn", [])
    assert again["errors"] == [{"field": "action", "rule": "referral_open", "message": again["detail"]}]


async def test_an_illegal_move_is_409_naming_the_status_and_allowed_actions(http: httpx.AsyncClient) -> None:
    referral_id = await submit(http)
    refused = problem(await post(http, referral_id, action="give"), 409)
    assert (refused["consent_status"], refused["allowed_actions"]) == ("given", ["change", "withdraw"])
    assert refused["errors"][0]["rule"] == "allowed_consent_move"


async def test_bad_consent_requests_are_422_with_field_and_rule(http: httpx.AsyncClient, caller: Caller) -> None:
    referral_id = await submit(http)
    cases = [
        ({"action": "change", "given_by": "young_person", "scope_organisation_ids": [LA]},
         ("given_by", "young_person_16_or_over")),
        ({"action": "change", "scope_service_ids": ["svc-nowhere"]}, ("scope_service_ids", "known_service")),
        ({"action": "change"}, ("scope_service_ids", "changes_something")),
        ({"action": "withdraw", "scope_service_ids": ["svc-camhs"]}, ("scope_service_ids", "not_with_withdraw")),
        ({"action": "change", "scope_organisation_ids": [LA], "occurred_at": "2026-01-01T00:00:00Z"},
         ("occurred_at", "not_before_previous")),
        ({"action": "change", "occurred_at": "2026-01-05T10:00:00"}, ("occurred_at", "timezone_aware")),
        ({"action": "forget"}, ("action", "enum")),
        ({"action": "change", "given_by": "neighbour"}, ("given_by", "enum")),
        ({"action": "change", "scope_service_ids": ["SVC CAMHS"]}, ("scope_service_ids.0", "string_pattern_mismatch")),
        ({"action": "withdraw", "note": "x" * 501}, ("note", "too_long")),
    ]  # fmt: skip
    for body, (field, rule) in cases:
        refused = problem(await post(http, referral_id, **body), 422)
        assert (refused["errors"][0]["field"], refused["errors"][0]["rule"]) == (field, rule), body
    missing_key = await http.post(
        f"/v1/referrals/{referral_id}/consent", json={"action": "withdraw", "given_by": "parent"}
    )
    assert problem(missing_key, 422)["errors"][0]["field"] == "Idempotency-Key"


async def test_an_idempotency_key_replays_the_first_answer(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    referral_id = await submit(http)
    first = await post(http, referral_id, "same", action="change", scope_organisation_ids=[LA])
    again = await post(http, referral_id, "same", action="change", scope_organisation_ids=[LA])
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    other = problem(await post(http, referral_id, "same", action="withdraw"), 422)
    assert other["errors"][0]["field"] == "Idempotency-Key"
    assert [r.version for r in uow.committed.consents[referral_id]] == [1, 2]


async def test_the_receiver_records_consent_and_strangers_cannot(
    http: httpx.AsyncClient, uow: FakeUnitOfWork, caller: Caller
) -> None:
    referral_id = await submit(http)
    for org, role, status in [(OTHER_SCHOOL, Role.REFERRER, 404), (LA, Role.RECEIVER, 404),
                              (CAMHS, Role.REFERRER, 403), (SCHOOL, Role.ADMIN, 403)]:  # fmt: skip
        caller.act_as(org, role)
        problem(await post(http, referral_id, action="withdraw"), status)
    assert [r.version for r in uow.committed.consents[referral_id]] == [1]
    caller.act_as(CAMHS, Role.RECEIVER)
    changed = await post(http, referral_id, action="change", given_by="carer")
    assert changed.status_code == 201, changed.text
    assert changed.json()["events"][-1]["recorded_by_org_id"] == CAMHS


async def test_a_hand_off_outside_consent_is_409_with_field_and_rule(http: httpx.AsyncClient, caller: Caller) -> None:
    referral_id = await submit(http)
    caller.act_as(CAMHS, Role.RECEIVER)
    handoff = {"status": "handed_off", "target_service_id": "svc-ehc"}
    refused = await http.post(f"/v1/referrals/{referral_id}/status", json=handoff, headers={"if-match": '"1"'})
    body = problem(refused, 409)
    assert body["errors"][0]["field"] == "target_service_id"
    assert body["errors"][0]["rule"] == "outside_consent_scope"
    assert (await post(http, referral_id, action="change", scope_organisation_ids=[LA])).status_code == 201
    moved = await http.post(f"/v1/referrals/{referral_id}/status", json=handoff, headers={"if-match": '"1"'})
    assert moved.status_code == 200, moved.text
