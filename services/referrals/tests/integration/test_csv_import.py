"""CSV import of a waiting list: validated whole, imported in one transaction, with historical times."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from referrals.adapters.orm import referral_history, referrals

from .conftest import CAMHS, SCHOOL, bearer, count, referral_events

HEADER = (
    "service_id,referrer_org_id,nhs_number,given_name,family_name,date_of_birth,primary_need,urgency,reason,"
    "consent_given_by,consent_given_at,consent_scope,referred_at,status,accepted_at,status_at,appointment_at,"
    "hold_reason,expected_resume"
)
GOOD = [
    "svc-camhs-core,org-riverside-primary,9434765919,Sam,Taylor,2015-04-12,SEMH,routine,Anxiety,parent,"
    "2025-01-02T09:00:00Z,CAMHS referral,2025-01-06T09:00:00Z,submitted,,,,,",
    "svc-camhs-core,org-oakfield-high,4010232137,Alex,Khan,2012-09-30,ASD,urgent,Assessment,carer,"
    "2025-02-01T09:00:00Z,CAMHS referral,2025-02-03T09:00:00Z,scheduled,2025-02-20T10:00:00Z,"
    "2025-03-01T10:00:00Z,2025-03-15T10:00:00Z,,",
    "svc-camhs-core,org-st-marys-primary,9876543210,Jo,Smith,2016-01-15,SEMH,routine,Low mood,parent,"
    "2025-03-01T09:00:00Z,CAMHS referral,2025-03-03T09:00:00Z,on_hold,2025-03-10T10:00:00Z,"
    "2025-04-01T10:00:00Z,,family_unavailable,2025-05-01",
]


async def post_csv(
    client: httpx.AsyncClient, text: str, org: str = CAMHS, role: str = "receiver", key: str = "imp-1"
) -> httpx.Response:
    headers = {**bearer(org, role), "content-type": "text/csv", "idempotency-key": key}
    return await client.post("/v1/referrals/import", content=text.encode(), headers=headers)


async def test_a_clean_file_imports_with_original_business_times(client: httpx.AsyncClient) -> None:
    response = await post_csv(client, "\n".join([HEADER, *GOOD]) + "\n")
    assert response.status_code == 201, response.text
    assert response.json()["imported"] == 3
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        statuses = sorted((await conn.execute(select(referrals.c.status))).scalars())
        times = sorted(
            t.isoformat()[:10] for t in (await conn.execute(select(referral_history.c.occurred_at))).scalars()
        )
    assert statuses == ["on_hold", "scheduled", "submitted"]
    assert times[0] == "2025-01-06"
    assert (
        await referral_events(client) == 1 + 3 + 3 + 3
    )  # submitted; submitted+accepted+scheduled; submitted+accepted+on_hold; consent.given of each
    again = await post_csv(client, "\n".join([HEADER, *GOOD]) + "\n")
    assert again.json() == response.json()
    assert await count(client, referrals) == 3


async def test_every_bad_cell_is_reported_and_nothing_is_imported(client: httpx.AsyncClient) -> None:
    bad = [
        GOOD[0].replace("9434765919", "9434765918"),
        GOOD[1].replace("ASD", "XYZ"),
        GOOD[2].replace("family_unavailable", ""),
        GOOD[0].replace("svc-camhs-core", "svc-nope").replace("9434765919", "4010232137"),
    ]
    response = await post_csv(client, "\n".join([HEADER, GOOD[0], *bad]) + "\n")
    assert response.status_code == 422
    problems = {(e["line"], e["field"]) for e in response.json()["errors"]}
    assert (3, "nhs_number") in problems
    assert (4, "primary_need") in problems
    assert (5, "hold_reason") in problems
    assert (6, "service_id") in problems
    assert await count(client, referrals) == 0
    assert await referral_events(client) == 0


async def test_duplicates_within_the_file_are_refused(client: httpx.AsyncClient) -> None:
    response = await post_csv(client, "\n".join([HEADER, GOOD[0], GOOD[0]]) + "\n")
    assert response.status_code == 422
    assert response.json()["errors"][0]["rule"] == "no_open_duplicate"
    assert response.json()["errors"][0]["line"] == 3


async def test_a_school_imports_only_its_own_referrals(client: httpx.AsyncClient) -> None:
    response = await post_csv(client, "\n".join([HEADER, GOOD[1]]) + "\n", org=SCHOOL, role="referrer")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "referrer_org_id"


async def test_structural_problems(client: httpx.AsyncClient) -> None:
    assert (await post_csv(client, "just,nonsense\n1,2\n")).status_code == 422
    assert (await post_csv(client, HEADER + "\n")).json()["errors"][0]["rule"] == "not_empty"
    headers = {**bearer(CAMHS, "receiver"), "content-type": "application/json", "idempotency-key": "k"}
    assert (await client.post("/v1/referrals/import", content=b"{}", headers=headers)).status_code == 415
    huge = HEADER + "\n" + (GOOD[0] + "\n") * 40_000
    assert (await post_csv(client, huge)).status_code == 413
