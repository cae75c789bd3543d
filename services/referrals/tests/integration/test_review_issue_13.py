"""Regression tests for the outside security review (issue #13).

Each oracle is written from the rules (brief §3 and the issue), not from the code under test: who may make which
move, who may read personal details, who keeps the directory, what a date or an identifier may be, RFC 9110's
strong comparison for If-Match, and that hostile input is a 4xx problem, never a 500 or a half-applied change.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from referrals.adapters.orm import directory_services, organisations, referral_history, referrals

from .conftest import CAMHS, LA, SCHOOL, bearer, count, move, referral_body, referral_events, submit
from .test_csv_import import GOOD, HEADER, post_csv

PROBLEM = "application/problem+json"
UNKNOWN = "org-not-in-directory"


def in_digits(text: str, zero: int) -> str:
    """``text`` with its ASCII digits written in another script's digits (zero: that script's digit zero)."""
    return "".join(chr(zero + int(c)) if c.isascii() and c.isdigit() else c for c in text)


FULL_WIDTH_NHS = in_digits("9434765919", 0xFF10)  # a valid NHS number, in full-width digits
ARABIC_INDIC_NHS = in_digits("9434765919", 0x0660)  # the same, in Arabic-Indic digits
# Moves only a receiver makes (brief §3): everything but submitted, withdrawn and entered_in_error.
RECEIVER_ONLY_IMPORT_STATUSES = ("acknowledged", "accepted", "scheduled", "on_hold")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


def csv_of(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def row(
    status: str = "submitted",
    referrer: str = SCHOOL,
    service: str = "svc-camhs-core",
    nhs: str = "9434765919",
    referred_at: str = "2025-01-06T09:00:00Z",
) -> str:
    times = {
        "submitted": ",,,,",
        "acknowledged": ",2025-01-10T09:00:00Z,,,",
        "accepted": "2025-01-10T09:00:00Z,,,,",
        "scheduled": "2025-01-10T09:00:00Z,2025-01-12T09:00:00Z,2025-02-01T09:00:00Z,,",
        "on_hold": "2025-01-10T09:00:00Z,2025-01-12T09:00:00Z,,family_unavailable,2025-03-01",
    }[status]
    return (
        f"{service},{referrer},{nhs},Sam,Taylor,2015-04-12,SEMH,routine,Anxiety,parent,2025-01-02T09:00:00Z,"
        f"CAMHS referral,{referred_at},{status},{times}"
    )


async def history_orgs(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = await conn.execute(
            select(referral_history.c.status, referral_history.c.actor_org_id).order_by(referral_history.c.version)
        )
        return [(r.status, r.actor_org_id) for r in rows]


# 1. CSV import records only the caller's own moves, attributed to the caller.


@pytest.mark.parametrize("status", RECEIVER_ONLY_IMPORT_STATUSES)
async def test_a_referrer_import_cannot_record_receiver_moves(client: httpx.AsyncClient, status: str) -> None:
    text = csv_of(row("submitted", nhs="4010232137"), row(status))
    problem = assert_problem(await post_csv(client, text, org=SCHOOL, role="referrer"), 422)
    assert {"line": 3, "field": "status"} in [{"line": e["line"], "field": e["field"]} for e in problem["errors"]]
    assert await count(client, referrals) == 0
    assert await referral_events(client) == 0


async def test_a_referrer_import_is_recorded_by_the_referrer(client: httpx.AsyncClient) -> None:
    response = await post_csv(client, csv_of(row("submitted")), org=SCHOOL, role="referrer")
    assert response.status_code == 201, response.text
    assert await history_orgs(client) == [("submitted", SCHOOL)]


async def test_a_receiver_imports_its_own_waiting_list_and_history_names_it(client: httpx.AsyncClient) -> None:
    response = await post_csv(client, csv_of(row("scheduled")), org=CAMHS, role="receiver")
    assert response.status_code == 201, response.text
    # CAMHS recorded every line of this history, the submission included: never the school.
    assert await history_orgs(client) == [("submitted", CAMHS), ("accepted", CAMHS), ("scheduled", CAMHS)]
    referral_id = response.json()["referral_ids"][0]
    shown = (await client.get(f"/v1/referrals/{referral_id}/history", headers=bearer(SCHOOL, "referrer"))).json()
    assert {h["actor_org_id"] for h in shown} == {CAMHS}


async def test_a_receiver_cannot_import_into_another_organisations_service(client: httpx.AsyncClient) -> None:
    for status in ("submitted", "accepted"):
        problem = assert_problem(await post_csv(client, csv_of(row(status)), org=LA, role="receiver"), 422)
        assert (problem["errors"][0]["line"], problem["errors"][0]["field"]) == (2, "service_id")
    assert await count(client, referrals) == 0


# 2. An organisation's admin and the platform admin.


async def test_only_a_platform_admin_registers_organisations(client: httpx.AsyncClient) -> None:
    body = {"name": "New school", "kind": "school", "area_id": "la-northshire"}
    for org in (LA, SCHOOL):
        assert_problem(
            await client.put("/v1/directory/organisations/org-new", json=body, headers=bearer(org, "admin")), 403
        )
    before = await count(client, organisations)
    changed = await client.put(
        f"/v1/directory/organisations/{LA}", json={**body, "kind": "local_authority"}, headers=bearer(LA, "admin")
    )
    assert_problem(changed, 403)
    assert await count(client, organisations) == before
    # A platform admin does so, whatever its own token's organisation.
    ok = await client.put("/v1/directory/organisations/org-new", json=body, headers=bearer(UNKNOWN, "platform_admin"))
    assert ok.status_code == 200, ok.text


async def test_an_admin_changes_only_its_own_organisations_services(client: httpx.AsyncClient) -> None:
    ehc = {
        "organisation_id": LA,
        "name": "Hijacked",
        "needs": ["ASD"],
        "urgencies": ["routine"],
        "clocks": [],
    }
    # Another organisation's service, kept there or moved to the admin's own organisation.
    assert_problem(
        await client.put("/v1/directory/services/svc-ehc-assessment", json=ehc, headers=bearer(CAMHS, "admin")), 403
    )
    moved = {**ehc, "organisation_id": CAMHS}
    assert_problem(
        await client.put("/v1/directory/services/svc-ehc-assessment", json=moved, headers=bearer(CAMHS, "admin")), 403
    )
    # A new service for another organisation.
    new = {**ehc, "name": "New"}
    assert_problem(await client.put("/v1/directory/services/svc-new", json=new, headers=bearer(CAMHS, "admin")), 403)
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = (await conn.execute(select(directory_services))).mappings().all()
    ehc_row = next(r for r in rows if r["id"] == "svc-ehc-assessment")
    assert (ehc_row["organisation_id"], ehc_row["version"]) == (LA, 1)
    assert "svc-new" not in {r["id"] for r in rows}
    # Its own service, and any service for a platform admin.
    own = await client.put(
        "/v1/directory/services/svc-camhs-core",
        json={**ehc, "organisation_id": CAMHS, "name": "CAMHS core", "urgencies": ["routine", "urgent"]},
        headers=bearer(CAMHS, "admin"),
    )
    assert own.status_code == 200, own.text
    platform = await client.put(
        "/v1/directory/services/svc-ehc-assessment", json=ehc, headers=bearer(CAMHS, "platform_admin")
    )
    assert platform.status_code == 200, platform.text


async def test_an_admin_reads_only_its_own_organisations_audit_entries(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    await client.get(f"/v1/referrals/{referral_id}", headers=bearer(SCHOOL, "referrer"))
    await client.get(f"/v1/referrals/{referral_id}", headers=bearer(CAMHS, "receiver"))
    mine = (await client.get("/v1/audit", headers=bearer(CAMHS, "admin"))).json()
    assert [e["organisation_id"] for e in mine] == [CAMHS]
    school = (await client.get("/v1/audit", headers=bearer(SCHOOL, "admin"))).json()
    assert [e["organisation_id"] for e in school] == [SCHOOL]
    assert_problem(await client.get(f"/v1/audit?organisation_id={SCHOOL}", headers=bearer(CAMHS, "admin")), 403)
    assert (await client.get(f"/v1/audit?organisation_id={CAMHS}", headers=bearer(CAMHS, "admin"))).status_code == 200
    everything = (await client.get("/v1/audit", headers=bearer(LA, "platform_admin"))).json()
    assert sorted(e["organisation_id"] for e in everything) == sorted([SCHOOL, CAMHS])


# 3. Organisations missing from the directory.


async def test_an_organisation_missing_from_the_directory_touches_no_referral(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    headers = {**bearer(UNKNOWN, "referrer"), "idempotency-key": "ghost"}
    calls = [
        client.post("/v1/referrals", json=referral_body(nhs_number="4010232137"), headers=headers),
        client.get("/v1/referrals", headers=headers),
        client.get(f"/v1/referrals/{referral_id}", headers=headers),
        client.get(f"/v1/referrals/{referral_id}/history", headers=headers),
        client.post(
            f"/v1/referrals/{referral_id}/status",
            json={"status": "withdrawn"},
            headers={**headers, "if-match": '"1"'},
        ),
        client.post(
            "/v1/referrals/import",
            content=csv_of(row(referrer=UNKNOWN)).encode(),
            headers={**headers, "content-type": "text/csv"},
        ),
    ]
    for call in calls:
        problem = assert_problem(await call, 403)
        assert problem["type"].endswith("/unknown-organisation")
    assert await count(client, referrals) == 1
    assert await referral_events(client) == 2  # the submission's: submitted, consent.given


# 4. Personal details: only the referrer role of the referrer and the receiver role of the receiver.


@pytest.mark.parametrize("org", [SCHOOL, CAMHS])
@pytest.mark.parametrize("role", ["ops", "admin", "platform_admin"])
async def test_ops_and_admins_of_either_party_never_read_a_referral(
    client: httpx.AsyncClient, org: str, role: str
) -> None:
    referral_id = (await submit(client)).json()["id"]
    for path in (f"/v1/referrals/{referral_id}", f"/v1/referrals/{referral_id}/history", "/v1/referrals"):
        problem = assert_problem(await client.get(path, headers=bearer(org, role)), 403)
        assert "Taylor" not in json.dumps(problem)


async def test_the_other_role_of_a_party_does_not_read_personal_details(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    for org, role in ((SCHOOL, "receiver"), (CAMHS, "referrer")):
        for path in (f"/v1/referrals/{referral_id}", f"/v1/referrals/{referral_id}/history"):
            assert "Taylor" not in assert_problem(await client.get(path, headers=bearer(org, role)), 403).get(
                "detail", ""
            )
        listed = (await client.get("/v1/referrals", headers=bearer(org, role))).json()
        assert listed["items"] == []
    # CAMHS as a referrer sends the same child to its own service: the 409 gives no link to a referral
    # that role may not read.
    headers = {**bearer(CAMHS, "referrer"), "idempotency-key": "camhs-as-referrer"}
    problem = assert_problem(await client.post("/v1/referrals", json=referral_body(), headers=headers), 409)
    assert "existing_referral" not in problem
    assert referral_id not in json.dumps(problem)


# 5. Dates bounded at the edge.

FAR_FUTURE = (datetime.now(UTC) + timedelta(days=5 * 366)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"referred_at": "0001-01-01T00:00:00Z"}, "referred_at"),
        ({"referred_at": "1999-12-31T23:59:59Z"}, "referred_at"),
        ({"referred_at": "2025-01-06T09:00:00"}, "referred_at"),
        ({"referred_at": "9999-12-31T23:59:59-05:00"}, "referred_at"),
        ({"consent": {"given_at": "0001-01-01T00:00:00Z"}}, "consent.given_at"),
        ({"consent": {"given_at": "2025-01-02T09:00:00"}}, "consent.given_at"),
        ({"child": {"date_of_birth": "1989-12-31"}}, "child.date_of_birth"),
        ({"child": {"date_of_birth": "0001-01-01"}}, "child.date_of_birth"),
        ({"child": {"date_of_birth": (date.today() + timedelta(days=2)).isoformat()}}, "child.date_of_birth"),
    ],
)
async def test_dates_out_of_bounds_or_without_zone_are_refused(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = referral_body()
    for key, value in change.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    problem = assert_problem(await submit(client, body), 422)
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    assert await count(client, referrals) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "accepted", "occurred_at": "0001-01-01T00:00:00Z"}, "occurred_at"),
        ({"status": "accepted", "occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),
        ({"status": "accepted", "occurred_at": FAR_FUTURE}, "occurred_at"),
        (
            {"status": "on_hold", "reason_code": "family_unavailable", "expected_resume": "0001-01-01"},
            "expected_resume",
        ),
        (
            {"status": "on_hold", "reason_code": "family_unavailable", "expected_resume": "9999-12-31"},
            "expected_resume",
        ),
    ],
)
async def test_move_times_are_bounded(client: httpx.AsyncClient, change: dict[str, Any], field: str) -> None:
    referral_id = (await submit(client)).json()["id"]
    problem = assert_problem(await move(client, referral_id, 1, CAMHS, "receiver", **change), 422)
    assert problem["errors"][0]["field"] == field


async def test_appointments_are_at_most_two_years_ahead(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    assert (await move(client, referral_id, 1, CAMHS, "receiver", status="accepted")).status_code == 200
    for when in (FAR_FUTURE, "0001-01-01T00:00:00Z", "2026-03-04T14:00:00"):
        problem = assert_problem(
            await move(client, referral_id, 2, CAMHS, "receiver", status="scheduled", appointment_at=when), 422
        )
        assert problem["errors"][0]["field"] == "appointment_at"
    soon = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert (
        await move(client, referral_id, 2, CAMHS, "receiver", status="scheduled", appointment_at=soon)
    ).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "referred_from=0001-01-01T00:00:00Z",
        "referred_to=9999-12-31T23:59:59-05:00",
        "referred_from=2025-01-01T00:00:00",
    ],
)
async def test_list_filters_are_bounded_and_zoned(client: httpx.AsyncClient, query: str) -> None:
    problem = assert_problem(await client.get(f"/v1/referrals?{query}", headers=bearer(SCHOOL, "referrer")), 422)
    assert problem["errors"][0]["field"] in ("referred_from", "referred_to")


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "2025-01-01T00:00:00"])
async def test_audit_since_is_bounded_and_zoned(client: httpx.AsyncClient, since: str) -> None:
    response = await client.get("/v1/audit", params={"since": since}, headers=bearer(LA, "platform_admin"))
    assert assert_problem(response, 422)["errors"][0]["field"] == "since"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("2025-02-03T09:00:00Z", "0001-02-03T09:00:00Z", "referred_at"),
        # A time without an offset is UK local time (a school's MIS export, issue #16); one that is no time is refused.
        ("2025-02-03T09:00:00Z", "03/02/2025 25:00", "referred_at"),
        ("2012-09-30", "1985-09-30", "date_of_birth"),
        ("2025-03-15T10:00:00Z", "9999-03-15T10:00:00Z", "appointment_at"),
    ],
)
async def test_csv_dates_are_bounded(client: httpx.AsyncClient, old: str, new: str, field: str) -> None:
    problem = assert_problem(await post_csv(client, csv_of(GOOD[0], GOOD[1].replace(old, new))), 422)
    assert [(e["line"], e["field"]) for e in problem["errors"]] == [(3, field)]
    assert await count(client, referrals) == 0


# 6. NHS numbers and UPNs: ASCII digits only.


@pytest.mark.parametrize(
    ("child", "field"),
    [
        ({"nhs_number": FULL_WIDTH_NHS}, "child.nhs_number"),
        ({"nhs_number": ARABIC_INDIC_NHS}, "child.nhs_number"),
        ({"nhs_number": None, "upn": in_digits("A12345678901B", 0xFF10)}, "child.upn"),
        ({"nhs_number": None, "upn": in_digits("A12345678901B", 0x0660)}, "child.upn"),
    ],
)
async def test_identifiers_in_other_digits_are_refused(
    client: httpx.AsyncClient, child: dict[str, Any], field: str
) -> None:
    assert (await submit(client)).status_code == 201  # the same child, with ASCII digits
    body = referral_body()
    body["child"] = {**body["child"], **child}
    problem = assert_problem(await submit(client, body), 422)
    assert any(e["field"] == field for e in problem["errors"]), problem
    assert await count(client, referrals) == 1


@pytest.mark.parametrize("nhs", [FULL_WIDTH_NHS, ARABIC_INDIC_NHS])
async def test_csv_identifiers_in_other_digits_are_refused(client: httpx.AsyncClient, nhs: str) -> None:
    problem = assert_problem(await post_csv(client, csv_of(GOOD[0].replace("9434765919", nhs))), 422)
    assert [(e["line"], e["field"]) for e in problem["errors"]] == [(2, "nhs_number")]
    assert await count(client, referrals) == 0


# 7. If-Match compares strongly.


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ('W/"1"', 412),
        ('w/"1"', 400),
        ('"1", "2"', 400),
        ("*", 400),
        ("1", 400),
        ('"1', 400),
        ('"abc"', 412),
        ('"99999999999999999999999999"', 412),
        ('"' + "9" * 5000 + '"', 412),
        ('"' + in_digits("1", 0xFF10) + '"', 400),
        ('"-1"', 412),
    ],
)
async def test_if_match_is_compared_strongly_and_never_a_500(
    client: httpx.AsyncClient, if_match: str, status: int
) -> None:
    referral_id = (await submit(client)).json()["id"]
    headers = [*bearer(CAMHS, "receiver").items(), ("if-match", if_match.encode())]
    response = await client.post(f"/v1/referrals/{referral_id}/status", json={"status": "accepted"}, headers=headers)
    assert_problem(response, status)
    shown = (await client.get(f"/v1/referrals/{referral_id}", headers=bearer(CAMHS, "receiver"))).json()
    assert (shown["status"], shown["version"]) == ("submitted", 1)


# 8. Hostile input elsewhere: a 4xx problem, never a 500, and nothing written.


def forged_cursor(at: str, referral_id: object) -> str:
    return base64.urlsafe_b64encode(json.dumps([at, referral_id]).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        "limit=" + "9" * 30,
        "limit=" + "9" * 5000,
        "limit=-" + "9" * 30,
        "service_id=svc%00",
        "cursor=" + forged_cursor("2025-01-01T00:00:00+00:00", "\u0000"),
        "cursor=" + forged_cursor("0001-01-01T00:00:00", "x"),
        "cursor=" + forged_cursor("9999-12-31T23:59:59-05:00", "0"),
        "cursor=" + forged_cursor("2025-01-01T00:00:00+00:00", 12),
    ],
)
async def test_hostile_list_queries_are_4xx(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/v1/referrals?{query}", headers=bearer(SCHOOL, "referrer"))
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "query", ["referral_id=%00", "organisation_id=org%00x", "limit=" + "9" * 30, "referral_id=" + "x" * 36]
)
async def test_hostile_audit_queries_are_4xx(client: httpx.AsyncClient, query: str) -> None:
    assert_problem(await client.get(f"/v1/audit?{query}", headers=bearer(LA, "platform_admin")), 422)


@pytest.mark.parametrize("referral_id", ["%00", "a%0d%0aSet-Cookie:x", "x" * 36, "%E2%80%AE" * 12])
async def test_hostile_referral_ids_are_4xx(client: httpx.AsyncClient, referral_id: str) -> None:
    for path in (f"/v1/referrals/{referral_id}", f"/v1/referrals/{referral_id}/history"):
        response = await client.get(path, headers=bearer(SCHOOL, "referrer"))
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == PROBLEM
    headers = {**bearer(CAMHS, "receiver"), "if-match": '"1"'}
    response = await client.post(f"/v1/referrals/{referral_id}/status", json={"status": "accepted"}, headers=headers)
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "key",
    ["caf\u00e9".encode(), "ключ".encode(), b"a\x00b", b"a\x01b", b"a\x7fb", b" "],
)
async def test_idempotency_keys_outside_visible_ascii_are_422(client: httpx.AsyncClient, key: bytes) -> None:
    headers = [*bearer(SCHOOL, "referrer").items(), ("idempotency-key", key)]
    response = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert assert_problem(response, 422)["errors"][0]["field"] == "Idempotency-Key"
    response = await client.post(
        "/v1/referrals/import",
        content=csv_of(GOOD[0]).encode(),
        headers=[*bearer(CAMHS, "receiver").items(), ("idempotency-key", key), ("content-type", "text/csv")],
    )
    assert assert_problem(response, 422)["errors"][0]["field"] == "Idempotency-Key"
    assert await count(client, referrals) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"service_id": "svc-camhs-core\u0000"}, "service_id"),
        ({"reason": "Anxiety\u0000"}, "reason"),
        ({"reason": "Anxiety\u001b[31m"}, "reason"),
        ({"consent": {"scope": "CAMHS\u0000"}}, "consent.scope"),
        ({"child": {"nhs_number": "9434765919\u0000"}}, "child.nhs_number"),
        ({"child": {"given_name": "Sam\u0000"}}, "child.given_name"),
    ],
)
async def test_control_characters_in_a_body_are_422(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = referral_body()
    for key, value in change.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    problem = assert_problem(await submit(client, body), 422)
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    assert await count(client, referrals) == 0


async def test_a_lone_surrogate_in_a_body_is_422(client: httpx.AsyncClient) -> None:
    text = json.dumps(referral_body(reason="placeholder")).replace("placeholder", "\\ud800")
    headers = {**bearer(SCHOOL, "referrer"), "idempotency-key": "surrogate", "content-type": "application/json"}
    response = await client.post("/v1/referrals", content=text.encode(), headers=headers)
    assert_problem(response, 422)
    assert await count(client, referrals) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "withdrawn", "reason_code": "family\u0000moved"}, "reason_code"),
        ({"status": "rejected", "reason_code": "outside_remit", "explanation": "x\u0000",
          "signposted_service_id": "svc-trust-ed-psych"}, "explanation"),
        ({"status": "handed_off", "target_service_id": "svc-ehc-assessment\u0000"}, "target_service_id"),
    ],
)  # fmt: skip
async def test_control_characters_in_a_move_are_422(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    referral_id = (await submit(client)).json()["id"]
    org, role = (SCHOOL, "referrer") if body["status"] == "withdrawn" else (CAMHS, "receiver")
    problem = assert_problem(await move(client, referral_id, 1, org, role, **body), 422)
    assert problem["errors"][0]["field"] == field
    assert await referral_events(client) == 2  # the submission's: submitted, consent.given


async def test_control_characters_in_a_csv_are_422(client: httpx.AsyncClient) -> None:
    text = csv_of(GOOD[0].replace("Anxiety", "Anx\u0000iety"), GOOD[1].replace("svc-camhs-core", "svc-camhs-\u0007"))
    problem = assert_problem(await post_csv(client, text), 422)
    assert {(e["line"], e["field"]) for e in problem["errors"]} >= {(2, "reason"), (3, "service_id")}
    assert await count(client, referrals) == 0


async def test_a_duplicate_met_by_a_hand_off_or_re_referral_gives_away_only_what_the_caller_may_read(
    client: httpx.AsyncClient,
) -> None:
    """Issue #13, duplicates, on the moves that open a referral elsewhere: the 409 says a referral exists and what
    to do, with a link only when the caller may read that referral (never another organisation's id)."""
    millbrook = "org-millbrook-primary"
    theirs: dict[str, str] = {}
    for n, service in enumerate(("svc-ehc-assessment", "svc-trust-ed-psych", "svc-camhs-eating-disorders")):
        headers = {**bearer(millbrook, "referrer"), "idempotency-key": f"millbrook-{n}"}
        made = await client.post("/v1/referrals", json=referral_body(service_id=service), headers=headers)
        assert made.status_code == 201, made.text
        theirs[service] = made.json()["id"]
    body = referral_body()
    body["consent"]["scope_organisation_ids"] = [LA, "org-riverside-mat", CAMHS]
    referral_id = (await submit(client, body)).json()["id"]
    moves = {
        "svc-ehc-assessment": {"status": "handed_off", "target_service_id": "svc-ehc-assessment"},
        "svc-trust-ed-psych": {"status": "rejected", "reason_code": "outside_remit", "explanation": "Learning need.",
                               "rereferral_service_id": "svc-trust-ed-psych"},
    }  # fmt: skip
    for service, change in moves.items():
        refused = await move(client, referral_id, 1, CAMHS, "receiver", **change)
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"].endswith("duplicate-referral"), problem
        assert "existing_referral" not in problem, "a link to a referral the caller may not read"
        assert all(other not in refused.text for other in theirs.values()), refused.text
        assert millbrook not in refused.text and "contact the service" in problem["detail"]
        assert problem["service_id"] == service
    # The receiver of the existing referral may read it: it gets the link, as a submission's duplicate would.
    own = await move(client, referral_id, 1, CAMHS, "receiver", status="handed_off",
                     target_service_id="svc-camhs-eating-disorders")  # fmt: skip
    assert own.status_code == 409, own.text
    assert own.json()["existing_referral"].endswith(theirs["svc-camhs-eating-disorders"])
    shown = await client.get(f"/v1/referrals/{referral_id}", headers=bearer(SCHOOL, "referrer"))
    assert (shown.json()["status"], shown.json()["version"]) == ("submitted", 1), "a refused move changed nothing"
