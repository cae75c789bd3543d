"""The referrals API on a real database: each change and its events in one transaction."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from referrals.adapters.orm import audit_log, outbox, referral_consents, referral_history, referral_people, referrals

from .conftest import CAMHS, LA, SCHOOL, bearer, count, move, referral_body, referral_events, submit


async def test_submit_writes_referral_person_history_and_outbox_together(client: httpx.AsyncClient) -> None:
    response = await submit(client)
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"].endswith(f"/v1/referrals/{response.json()['id']}")
    assert response.json()["receiving_org_id"] == CAMHS
    assert [await count(client, t) for t in (referrals, referral_people, referral_history, referral_consents)] == [
        1,
        1,
        1,
        1,
    ]
    assert await referral_events(client) == 2  # submitted, then consent.given


async def test_the_event_carries_no_personal_data(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        query = select(outbox.store.c.payload).where(outbox.store.c.message_key == referral_id)
        payloads = (await conn.execute(query)).scalars().all()
    assert len(payloads) == 2  # submitted, consent.given (whose note, the consent's scope in words, stays here)
    for payload in payloads:
        text = bytes(payload).decode()
        for secret in ("Sam", "Taylor", "2015-04-12", "9434765919", "anxiety", "Referral to CAMHS"):
            assert secret not in text


async def test_idempotency_key_replays_and_refuses_a_different_body(client: httpx.AsyncClient) -> None:
    first = await submit(client, key="k-1")
    again = await submit(client, key="k-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    other = await submit(client, referral_body(urgency="urgent"), key="k-1")
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    missing = await client.post("/v1/referrals", json=referral_body(), headers=bearer(SCHOOL, "referrer"))
    assert missing.status_code == 422
    assert await count(client, referrals) == 1


async def test_same_child_open_at_same_service_is_409_with_a_link(client: httpx.AsyncClient) -> None:
    first = (await submit(client)).json()
    duplicate = await submit(client)
    assert duplicate.status_code == 409
    assert duplicate.json()["existing_referral"].endswith(first["id"])


async def test_a_duplicate_of_another_organisations_referral_says_so_without_giving_it_away(
    client: httpx.AsyncClient,
) -> None:
    first = (await submit(client)).json()
    headers = {**bearer("org-millbrook-primary", "referrer"), "idempotency-key": "other-school"}
    duplicate = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert duplicate.status_code == 409
    problem = duplicate.json()
    assert "existing_referral" not in problem
    assert first["id"] not in duplicate.text
    assert "contact the service" in problem["detail"] and problem["service_id"] == "svc-camhs-core"
    # Nor does a parallel referral the caller cannot see show its id.
    other_school = {**bearer("org-millbrook-primary", "referrer"), "idempotency-key": "slt"}
    slt = await client.post("/v1/referrals", json=referral_body(service_id="svc-trust-slt"), headers=other_school)
    assert slt.status_code == 201, slt.text
    shown = (
        await client.get(f"/v1/referrals/{slt.json()['id']}", headers=bearer("org-millbrook-primary", "referrer"))
    ).json()
    assert shown["parallel_referrals"] == [{"referral_id": None, "service_id": "svc-camhs-core", "status": "submitted"}]


async def test_parallel_referrals_elsewhere_are_flagged(client: httpx.AsyncClient) -> None:
    camhs = (await submit(client)).json()
    slt = (await submit(client, referral_body(service_id="svc-trust-slt"))).json()
    shown = (await client.get(f"/v1/referrals/{slt['id']}", headers=bearer(SCHOOL, "referrer"))).json()
    assert [p["referral_id"] for p in shown["parallel_referrals"]] == [camhs["id"]]


async def test_receiver_moves_with_if_match_and_stale_version_is_412(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    moved = await move(client, referral_id, 1, CAMHS, "receiver", status="accepted")
    assert moved.status_code == 200, moved.text
    assert moved.headers["etag"] == '"2"'
    stale = await move(client, referral_id, 1, CAMHS, "receiver", status="in_progress")
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    no_match = await client.post(
        f"/v1/referrals/{referral_id}/status", json={"status": "in_progress"}, headers=bearer(CAMHS, "receiver")
    )
    assert no_match.status_code == 428
    assert await referral_events(client) == 3  # submitted, consent.given, accepted


async def test_illegal_move_is_409_naming_status_and_allowed_moves(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    response = await move(client, referral_id, 1, CAMHS, "receiver", status="completed", outcome_code="discharged")
    assert response.status_code == 409
    body = response.json()
    assert body["current_status"] == "submitted"
    assert "accepted" in body["allowed_moves"]
    assert await referral_events(client) == 2  # the submission's two


async def test_a_school_withdraws_but_cannot_accept(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    assert (await move(client, referral_id, 1, SCHOOL, "referrer", status="accepted")).status_code == 403
    withdrawn = await move(client, referral_id, 1, SCHOOL, "referrer", status="withdrawn")
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"


async def test_an_agency_takes_a_referral_through_every_status(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    steps = [
        {"status": "acknowledged"},
        {"status": "accepted"},
        {"status": "scheduled", "appointment_at": "2026-02-03T14:00:00Z"},
        {"status": "on_hold", "reason_code": "family_unavailable", "expected_resume": "2026-03-01"},
        {"status": "scheduled", "appointment_at": "2026-03-04T14:00:00Z"},
        {"status": "in_progress"},
        {"status": "completed", "outcome_code": "support_completed"},
    ]
    for version, step in enumerate(steps, start=1):
        response = await move(client, referral_id, version, CAMHS, "receiver", **step)
        assert response.status_code == 200, (step, response.text)
    history = (await client.get(f"/v1/referrals/{referral_id}/history", headers=bearer(SCHOOL, "referrer"))).json()
    assert [h["status"] for h in history] == ["submitted"] + [s["status"] for s in steps]
    assert [h["version"] for h in history] == list(range(1, 9))
    assert await referral_events(client) == 8 + 1  # and consent.given


async def test_moves_the_brief_allows_a_new_hold_reason_and_error_after_completion(client: httpx.AsyncClient) -> None:
    """Brief §3: on_hold may go on hold again (a new reason), and any status, a final one too, may become
    entered_in_error; nothing follows entered_in_error."""
    referral_id = (await submit(client)).json()["id"]
    steps = [
        {"status": "accepted"},
        {"status": "on_hold", "reason_code": "service_capacity", "expected_resume": "2026-03-01"},
        {"status": "on_hold", "reason_code": "family_unavailable", "expected_resume": "2026-04-01"},
        {"status": "accepted"},
        {"status": "completed", "outcome_code": "discharged"},
    ]
    for version, step in enumerate(steps, start=1):
        response = await move(client, referral_id, version, CAMHS, "receiver", **step)
        assert response.status_code == 200, (step, response.text)
    assert response.json()["allowed_moves"] == ["entered_in_error"]
    removed = await move(client, referral_id, 6, SCHOOL, "referrer", status="entered_in_error")
    assert removed.status_code == 200, removed.text
    assert (removed.json()["status"], removed.json()["allowed_moves"]) == ("entered_in_error", [])
    again = await move(client, referral_id, 7, CAMHS, "receiver", status="entered_in_error")
    assert (again.status_code, again.json()["allowed_moves"]) == (409, [])
    history = (await client.get(f"/v1/referrals/{referral_id}/history", headers=bearer(SCHOOL, "referrer"))).json()
    assert [h["status"] for h in history] == ["submitted"] + [s["status"] for s in steps] + ["entered_in_error"]
    assert await referral_events(client) == 7 + 1  # and consent.given


async def test_hand_off_opens_a_linked_referral_in_the_same_transaction(client: httpx.AsyncClient) -> None:
    body = referral_body()
    body["consent"]["scope_organisation_ids"] = [LA]  # the family agreed the local authority may have it
    referral_id = (await submit(client, body)).json()["id"]
    handed = await move(
        client, referral_id, 1, CAMHS, "receiver", status="handed_off", target_service_id="svc-ehc-assessment"
    )
    assert handed.status_code == 200, handed.text
    new_id = handed.json()["linked_to_id"]
    linked = (await client.get(f"/v1/referrals/{new_id}", headers=bearer(LA, "receiver"))).json()
    assert linked["status"] == "submitted"
    assert linked["linked_from_id"] == referral_id
    assert linked["child"]["family_name"] == "Taylor"
    assert linked["consent"]["scope_organisation_ids"] == [LA]  # the linked referral rests on the same consent
    # submitted, consent.given, handed_off; the linked referral's submitted and consent.given
    assert await referral_events(client) == 5
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        payloads = (
            await conn.execute(select(outbox.store.c.payload).where(outbox.store.c.message_key == referral_id))
        ).scalars()
        handed = [json.loads(bytes(p)) for p in payloads][-1]
    assert (handed["status"], handed["linked_referral_id"], handed["onward_service_id"]) == (
        "handed_off",
        new_id,
        "svc-ehc-assessment",
    )


async def test_rejection_needs_reason_explanation_and_somewhere_to_go(client: httpx.AsyncClient) -> None:
    body = referral_body()
    body["consent"]["scope_service_ids"] = ["svc-camhs-core", "svc-trust-ed-psych"]
    referral_id = (await submit(client, body)).json()["id"]
    bare = await move(client, referral_id, 1, CAMHS, "receiver", status="rejected", reason_code="outside_remit")
    assert bare.status_code == 422
    assert bare.json()["errors"][0]["field"] == "explanation"
    rereferred = await move(
        client,
        referral_id,
        1,
        CAMHS,
        "receiver",
        status="rejected",
        reason_code="outside_remit",
        explanation="Educational need.",
        rereferral_service_id="svc-trust-ed-psych",
    )
    assert rereferred.status_code == 200, rereferred.text
    assert rereferred.json()["linked_to_id"]


async def test_personal_data_only_to_the_parties_and_every_read_audited(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    assert (await client.get(f"/v1/referrals/{referral_id}", headers=bearer(SCHOOL, "referrer"))).json()["child"]
    assert (await client.get(f"/v1/referrals/{referral_id}", headers=bearer(CAMHS, "receiver"))).status_code == 200
    assert (await client.get(f"/v1/referrals/{referral_id}", headers=bearer(LA, "ops"))).status_code == 403
    assert (
        await client.get(f"/v1/referrals/{referral_id}", headers=bearer("org-oakfield-high", "referrer"))
    ).status_code == 404
    assert (await client.get(f"/v1/referrals/{referral_id}")).status_code == 401
    assert await count(client, audit_log) == 2


async def test_list_is_filtered_to_the_caller_and_paginated(client: httpx.AsyncClient) -> None:
    for number in ("9434765919", "4010232137", "9876543210"):
        assert (await submit(client, referral_body(nhs_number=number))).status_code == 201
    first = (await client.get("/v1/referrals?limit=2", headers=bearer(SCHOOL, "referrer"))).json()
    assert len(first["items"]) == 2
    second = (
        await client.get(f"/v1/referrals?limit=2&cursor={first['next_cursor']}", headers=bearer(SCHOOL, "referrer"))
    ).json()
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = {r["id"] for r in first["items"] + second["items"]}
    assert len(ids) == 3
    foreign = (await client.get("/v1/referrals", headers=bearer("org-oakfield-high", "referrer"))).json()
    assert foreign["items"] == []
    bad = await client.get("/v1/referrals?cursor=nonsense", headers=bearer(SCHOOL, "referrer"))
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"child": {"nhs_number": "9434765918"}}, "child.nhs_number"),
        ({"service_id": "svc-nope"}, "service_id"),
        ({"referred_at": "2999-01-01T00:00:00Z"}, "referred_at"),
        ({"primary_need": "XYZ"}, "primary_need"),
        ({"child": {"nhs_number": None}}, "child"),
        ({"reason": "<script>alert(1)</script>' OR 1=1 --" * 200}, "reason"),
        ({"child": {"given_name": "<script>alert(1)</script>"}}, "child.given_name"),
        ({"child": {"family_name": "x'; DROP TABLE referrals; --"}}, "child.family_name"),
        ({"service_id": "svc' OR '1'='1"}, "service_id"),
        ({"child": {"date_of_birth": "1900-01-01"}}, "child.date_of_birth"),
        ({"consent": {"given_by": "neighbour"}}, "consent.given_by"),
        ({"urgency": 3}, "urgency"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, object], field: str
) -> None:
    body = referral_body()
    for key, value in change.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    response = await submit(client, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(e["field"].startswith(field) for e in response.json()["errors"]), response.json()
    assert await referral_events(client) == 0


async def test_malformed_json_is_a_problem_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/referrals",
        content=b"{not json",
        headers={**bearer(SCHOOL, "referrer"), "content-type": "application/json", "idempotency-key": "x"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_oversized_body_is_413_and_changes_nothing(client: httpx.AsyncClient) -> None:
    body = referral_body(reason="x" * 2_000_000)
    response = await submit(client, body)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await referral_events(client) == 0


async def test_names_in_other_alphabets_and_with_apostrophes_are_fine(client: httpx.AsyncClient) -> None:
    body = referral_body()
    body["child"] = {**body["child"], "given_name": "Zoë-Anne", "family_name": "O'Brien"}
    assert (await submit(client, body)).status_code == 201
