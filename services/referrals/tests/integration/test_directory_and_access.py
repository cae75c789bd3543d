"""Directory administration, the audit log, and who may call what (the authorisation matrix)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from referrals.adapters.orm import outbox

from .conftest import CAMHS, LA, SCHOOL, bearer, move, referral_body, submit

OTHER_SCHOOL = "org-oakfield-high"
NEW_SERVICE = {
    "organisation_id": CAMHS,
    "name": "CAMHS neurodevelopmental",
    "needs": ["ASD"],
    "urgencies": ["routine"],
    "clocks": ["service_target"],
    "target_days": 126,
}


async def test_seeded_directory_is_readable_by_anyone_signed_in(client: httpx.AsyncClient) -> None:
    for role in ("referrer", "receiver", "ops", "admin", "platform_admin"):
        services = await client.get("/v1/directory/services", headers=bearer(SCHOOL, role))
        assert services.status_code == 200
        assert {"svc-camhs-core", "svc-ehc-assessment"} <= {s["id"] for s in services.json()}
    orgs = (await client.get("/v1/directory/organisations", headers=bearer(SCHOOL, "referrer"))).json()
    assert {o["kind"] for o in orgs} == {"school", "trust", "camhs", "local_authority", "voluntary"}
    assert (await client.get("/v1/directory/services")).status_code == 401


async def test_admin_registers_a_service_and_each_change_is_an_event(client: httpx.AsyncClient) -> None:
    # The organisation's own admin registers it; a platform admin changes it.
    first = await client.put("/v1/directory/services/svc-camhs-neuro", json=NEW_SERVICE, headers=bearer(CAMHS, "admin"))
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    second = await client.put(
        "/v1/directory/services/svc-camhs-neuro",
        json={**NEW_SERVICE, "target_days": 90},
        headers=bearer(LA, "platform_admin"),
    )
    assert second.json()["version"] == 2
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = (
            await conn.execute(select(outbox.store.c.headers).where(outbox.store.c.message_key == "svc-camhs-neuro"))
        ).scalars()
        types = [h["ce_type"] for h in rows]
    assert types == ["uk.send.directory.service.upserted.v1"] * 2
    referral = await submit(client, referral_body(service_id="svc-camhs-neuro", primary_need="ASD"))
    assert referral.status_code == 201


async def test_directory_rules(client: httpx.AsyncClient) -> None:
    unknown_org = await client.put(
        "/v1/directory/services/svc-x",
        json={**NEW_SERVICE, "organisation_id": "org-nope"},
        headers=bearer(LA, "platform_admin"),
    )
    assert unknown_org.status_code == 422
    assert unknown_org.json()["errors"][0]["field"] == "organisation_id"
    no_target = await client.put(
        "/v1/directory/services/svc-x", json={**NEW_SERVICE, "target_days": None}, headers=bearer(CAMHS, "admin")
    )
    assert no_target.status_code == 422
    bad_id = await client.put("/v1/directory/services/Bad%20Id", json=NEW_SERVICE, headers=bearer(LA, "platform_admin"))
    assert bad_id.status_code == 422
    assert (
        await client.put("/v1/directory/services/svc-x", json=NEW_SERVICE, headers=bearer(LA, "ops"))
    ).status_code == 403


async def test_reads_of_personal_data_are_in_the_audit_log(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    await client.get(f"/v1/referrals/{referral_id}", headers=bearer(CAMHS, "receiver"))
    entries = (await client.get(f"/v1/audit?referral_id={referral_id}", headers=bearer(LA, "platform_admin"))).json()
    assert [(e["organisation_id"], e["action"]) for e in entries] == [(CAMHS, "read_referral")]
    assert (await client.get("/v1/audit", headers=bearer(CAMHS, "receiver"))).status_code == 403


UNKNOWN = "org-not-in-directory"
# (method, path template, body, {(organisation, role): expected status}); {id} is a referral the SCHOOL sent to CAMHS.
# Only the referrer role of the referring organisation and the receiver role of the receiving one read a referral;
# an organisation missing from the directory does nothing with referrals; only a platform admin changes organisations.
MATRIX = [
    ("GET", "/v1/referrals", None,
     {(SCHOOL, "referrer"): 200, (CAMHS, "receiver"): 200, (LA, "ops"): 403, (LA, "admin"): 403,
      (LA, "platform_admin"): 403, (UNKNOWN, "referrer"): 403, (UNKNOWN, "receiver"): 403, (None, None): 401}),
    ("GET", "/v1/referrals/{id}", None,
     {(SCHOOL, "referrer"): 200, (OTHER_SCHOOL, "referrer"): 404, (CAMHS, "receiver"): 200, (LA, "receiver"): 404,
      (LA, "ops"): 403, (LA, "admin"): 403, (LA, "platform_admin"): 403, (SCHOOL, "platform_admin"): 403,
      (CAMHS, "referrer"): 403, (SCHOOL, "receiver"): 403, (UNKNOWN, "referrer"): 403, (None, None): 401}),
    ("GET", "/v1/referrals/{id}/history", None,
     {(SCHOOL, "referrer"): 200, (OTHER_SCHOOL, "referrer"): 404, (CAMHS, "receiver"): 200, (LA, "receiver"): 404,
      (LA, "ops"): 403, (CAMHS, "platform_admin"): 403, (CAMHS, "referrer"): 403, (UNKNOWN, "receiver"): 403,
      (None, None): 401}),
    ("POST", "/v1/referrals/{id}/status", {"status": "acknowledged"},
     {(CAMHS, "receiver"): 200, (SCHOOL, "referrer"): 403, (LA, "receiver"): 404, (OTHER_SCHOOL, "referrer"): 404,
      (LA, "ops"): 403, (LA, "admin"): 403, (CAMHS, "platform_admin"): 403, (UNKNOWN, "receiver"): 403,
      (None, None): 401}),
    ("POST", "/v1/referrals", "new",
     {(SCHOOL, "referrer"): 201, (CAMHS, "receiver"): 403, (LA, "ops"): 403, (LA, "admin"): 403,
      (SCHOOL, "platform_admin"): 403, (UNKNOWN, "referrer"): 403, (None, None): 401}),
    ("POST", "/v1/referrals/import", "csv",
     {(LA, "ops"): 403, (LA, "admin"): 403, (LA, "platform_admin"): 403, (UNKNOWN, "referrer"): 403,
      (UNKNOWN, "receiver"): 403, (None, None): 401}),
    ("GET", "/v1/audit", None,
     {(LA, "platform_admin"): 200, (LA, "admin"): 200, (UNKNOWN, "platform_admin"): 200, (UNKNOWN, "admin"): 403,
      (SCHOOL, "referrer"): 403, (CAMHS, "receiver"): 403, (LA, "ops"): 403, (None, None): 401}),
    ("PUT", "/v1/directory/organisations/org-new", {"name": "New", "kind": "school", "area_id": "la-northshire"},
     {(LA, "platform_admin"): 200, (UNKNOWN, "platform_admin"): 200, (LA, "admin"): 403, (SCHOOL, "admin"): 403,
      (SCHOOL, "referrer"): 403, (CAMHS, "receiver"): 403, (LA, "ops"): 403, (None, None): 401}),
]  # fmt: skip
CASES = [(m, p, b, who, expected) for m, p, b, table in MATRIX for who, expected in table.items()]


@pytest.mark.parametrize(("method", "path", "body", "who", "expected"), CASES)
async def test_authorisation_matrix(
    client: httpx.AsyncClient, method: str, path: str, body: object, who: tuple[str | None, str | None], expected: int
) -> None:
    referral_id = (await submit(client)).json()["id"]
    org, role = who
    headers = bearer(org, role) if org and role else {}
    headers["if-match"] = '"1"'
    headers["idempotency-key"] = f"matrix-{org}-{role}"
    if body == "new":
        response = await client.request(method, path, json=referral_body(nhs_number="4010232137"), headers=headers)
    elif body == "csv":
        response = await client.request(
            method, path, content=b"service_id\n", headers={**headers, "content-type": "text/csv"}
        )
    else:
        response = await client.request(method, path.format(id=referral_id), json=body, headers=headers)
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.headers["content-type"] == "application/problem+json"


async def test_forged_and_expired_tokens_are_401(client: httpx.AsyncClient) -> None:
    from send_devkit.tokens import mint_token

    forged = mint_token(SCHOOL, "referrer", secret="not-the-secret-but-long-enough-for-hs256-use")
    expired = mint_token(SCHOOL, "referrer", ttl_seconds=-10)
    for token in (forged, expired, "not-a-jwt"):
        response = await client.get("/v1/referrals", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_receiver_cannot_move_another_services_referral(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    assert (await move(client, referral_id, 1, LA, "receiver", status="accepted")).status_code == 404
