"""Erasure and subject access on a real database (PostgreSQL and SQLite): the tombstone really blanks the
columns, read straight from the tables; the pseudonymous record and the event store are untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select

from referrals.adapters.orm import (
    audit_log,
    family_link_emails,
    family_links,
    outbox,
    referral_consents,
    referral_history,
    referral_people,
    referrals,
)
from send_devkit.tokens import mint_token

from .conftest import CAMHS, SCHOOL, bearer, move, referral_body, submit

PERSONAL = ("given_name", "family_name", "date_of_birth", "nhs_number", "upn", "reason")
CONTACT = ("contact_email", "contact_phone", "contact_preference")


async def rows(client: httpx.AsyncClient, statement: Any) -> list[dict[str, Any]]:
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def write(client: httpx.AsyncClient, *statements: Any) -> None:
    async with client.app.state.runtime.engine.begin() as conn:  # type: ignore[attr-defined]
        for statement in statements:
            await conn.execute(statement)


async def withdrawn(client: httpx.AsyncClient, nhs_number: str = "9434765919") -> str:
    created = await submit(client, referral_body(nhs_number))
    assert created.status_code == 201, created.text
    referral_id = str(created.json()["id"])
    moved = await move(client, referral_id, 1, SCHOOL, "referrer", status="withdrawn",
                       explanation="Alex's family moved away.")  # fmt: skip
    assert moved.status_code == 200, moved.text
    return referral_id


async def with_family_contact_and_link(client: httpx.AsyncClient, referral_id: str) -> str:
    """Contact details and a family link with its email, written as the family view writes them."""
    now = datetime.now(UTC)
    link_id = f"link-{referral_id[:8]}"
    [referral] = await rows(client, select(referrals.c.child_ref).where(referrals.c.id == referral_id))
    await write(
        client,
        referral_people.update()
        .where(referral_people.c.referral_id == referral_id)
        .values(contact_email="parent@example.org", contact_phone="07700900123", contact_preference="email"),
        insert(family_links).values(
            id=link_id, token_hash="h" * 64, child_ref=referral["child_ref"], referral_id=referral_id,
            issued_by_org_id=CAMHS, created_at=now, expires_at=now + timedelta(days=30),
        ),
        insert(family_link_emails).values(
            link_id=link_id, to_address="parent@example.org", token=None, queued_at=now, sent_at=now, attempts=1
        ),
    )  # fmt: skip
    return link_id


async def test_erasure_blanks_the_personal_columns_and_keeps_the_record(client: httpx.AsyncClient) -> None:
    referral_id = await withdrawn(client)
    kept = await withdrawn(client, "4010232137")  # another child: untouched
    await with_family_contact_and_link(client, referral_id)
    [before_referral] = await rows(client, select(referrals).where(referrals.c.id == referral_id))
    before_history = await rows(client, select(referral_history).where(referral_history.c.referral_id == referral_id))
    before_events = await rows(client, select(outbox.store))
    before_consents = await rows(
        client, select(referral_consents).where(referral_consents.c.referral_id == referral_id)
    )
    assert [c["note"] for c in before_consents] == ["Referral to CAMHS"]

    erased = await client.post(f"/v1/referrals/{referral_id}/erasure", headers=bearer(CAMHS, "receiver"))
    assert erased.status_code == 200, erased.text

    [person] = await rows(client, select(referral_people).where(referral_people.c.referral_id == referral_id))
    assert {column: person[column] for column in PERSONAL + CONTACT} == dict.fromkeys(PERSONAL + CONTACT)
    assert person["erased_at"] is not None and person["erased_by_org_id"] == CAMHS
    consents = await rows(client, select(referral_consents).where(referral_consents.c.referral_id == referral_id))
    assert [c["note"] for c in consents] == [None]
    assert [{k: v for k, v in c.items() if k != "note"} for c in consents] == [
        {k: v for k, v in c.items() if k != "note"} for c in before_consents
    ]
    assert await rows(client, select(family_link_emails)) == []
    assert len(await rows(client, select(family_links))) == 1, "the link is the child's: it stays"
    [after_referral] = await rows(client, select(referrals).where(referrals.c.id == referral_id))
    assert after_referral == before_referral
    history = await rows(client, select(referral_history).where(referral_history.c.referral_id == referral_id))
    assert "Alex's family moved away." in [h["explanation"] for h in before_history]
    assert [h["explanation"] for h in history] == [None] * len(before_history), "free text may name the child"
    assert [{**h, "explanation": None} for h in history] == [{**h, "explanation": None} for h in before_history]
    assert await rows(client, select(outbox.store)) == before_events, "erasure publishes nothing"
    [other] = await rows(client, select(referral_people).where(referral_people.c.referral_id == kept))
    assert (other["given_name"], other["nhs_number"], other["erased_at"]) == ("Sam", "4010232137", None)
    audited = await rows(client, select(audit_log).where(audit_log.c.action == "erased"))
    assert [(a["referral_id"], a["organisation_id"], a["role"]) for a in audited] == [(referral_id, CAMHS, "receiver")]


async def test_an_erased_referral_is_read_as_its_tombstone_everywhere(client: httpx.AsyncClient) -> None:
    referral_id = await withdrawn(client)
    erased = (await client.post(f"/v1/referrals/{referral_id}/erasure", headers=bearer(SCHOOL, "referrer"))).json()
    shown = await client.get(f"/v1/referrals/{referral_id}", headers=bearer(CAMHS, "receiver"))
    assert shown.status_code == 200, shown.text
    assert shown.json()["child"] == {"erased_at": erased["erased_at"], "erased_by_org_id": SCHOOL}
    assert shown.json()["reason"] is None
    history = await client.get(f"/v1/referrals/{referral_id}/history", headers=bearer(SCHOOL, "referrer"))
    assert [h["status"] for h in history.json()] == ["submitted", "withdrawn"]
    listed = await client.get("/v1/referrals", headers=bearer(SCHOOL, "referrer"))
    assert [r["id"] for r in listed.json()["items"]] == [referral_id]
    client.cookies.set("send_session", mint_token(CAMHS, "receiver"))
    page = await client.get(f"/referrals/{referral_id}")
    assert page.status_code == 200, page.text
    assert "Details erased on" in page.text and "Sam" not in page.text
    client.cookies.clear()
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    if "/v1/referrals/{referral_id}/consent" in paths:  # the consent history (issue #17), where it is served
        consent = await client.get(f"/v1/referrals/{referral_id}/consent", headers=bearer(SCHOOL, "referrer"))
        assert consent.status_code == 200, consent.text
        assert "Referral to CAMHS" not in consent.text


async def test_erasure_is_refused_while_open_and_for_others(client: httpx.AsyncClient) -> None:
    referral_id = str((await submit(client)).json()["id"])
    refused = await client.post(f"/v1/referrals/{referral_id}/erasure", headers=bearer(SCHOOL, "referrer"))
    assert refused.status_code == 409 and refused.json()["rule"] == "referral_open"
    stranger = await client.post(
        f"/v1/referrals/{referral_id}/erasure", headers=bearer("org-millbrook-primary", "referrer")
    )
    assert stranger.status_code == 404
    [person] = await rows(client, select(referral_people).where(referral_people.c.referral_id == referral_id))
    assert person["given_name"] == "Sam" and person["erased_at"] is None


async def test_an_ehc_plan_issued_is_kept(client: httpx.AsyncClient) -> None:
    created = await submit(client, referral_body(service_id="svc-ehc-assessment"))
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    la = "org-northshire-la"
    assert (await move(client, referral_id, 1, la, "receiver", status="accepted")).status_code == 200
    done = await move(client, referral_id, 2, la, "receiver", status="completed", outcome_code="plan_issued")
    assert done.status_code == 200, done.text
    refused = await client.post(f"/v1/referrals/{referral_id}/erasure", headers=bearer(la, "receiver"))
    assert refused.status_code == 409 and refused.json()["rule"] == "statutory_record"


async def test_subject_access_exports_everything_held_with_the_reads(client: httpx.AsyncClient) -> None:
    referral_id = await withdrawn(client)
    link_id = await with_family_contact_and_link(client, referral_id)
    assert (await client.get(f"/v1/referrals/{referral_id}", headers=bearer(CAMHS, "receiver"))).status_code == 200
    elsewhere = await withdrawn(client, "4010232137")  # another child
    exported = await client.post(
        "/v1/subject-access", json={"nhs_number": "9434765919"}, headers=bearer(CAMHS, "receiver")
    )
    assert exported.status_code == 200, exported.text
    assert "9434765919" not in str(exported.request.url)
    [record] = exported.json()["referrals"]
    assert record["referral"]["id"] == referral_id and elsewhere not in exported.text
    assert record["personal_data"]["given_name"] == "Sam"
    assert record["personal_data"]["contact_email"] == "parent@example.org"
    assert [c["note"] for c in record["consents"]] == ["Referral to CAMHS"]
    assert [h["status"] for h in record["history"]] == ["submitted", "withdrawn"]
    assert [link["id"] for link in record["family_links"]] == [link_id]
    assert "h" * 64 not in exported.text, "never a token's hash"
    assert [(e["action"], e["organisation_id"]) for e in record["audit_log"]] == [
        ("read_referral", CAMHS),
        ("subject_access", CAMHS),
    ]
    # After erasure the same request finds the referral by its child reference, as its tombstone.
    await client.post(f"/v1/referrals/{referral_id}/erasure", headers=bearer(CAMHS, "receiver"))
    again = await client.post(
        "/v1/subject-access", json={"nhs_number": "9434765919"}, headers=bearer(SCHOOL, "referrer")
    )
    [record] = again.json()["referrals"]
    assert record["personal_data"]["given_name"] is None and record["personal_data"]["erased_by_org_id"] == CAMHS
    assert "Sam" not in again.text and "parent@example.org" not in again.text
    none = await client.post(
        "/v1/subject-access", json={"nhs_number": "9434765919"}, headers=bearer("org-millbrook-primary", "referrer")
    )
    assert none.status_code == 200 and none.json()["referrals"] == []
