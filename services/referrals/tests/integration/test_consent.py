"""Consent on a real database (PostgreSQL and SQLite): the repository's rows as written and read back, and the
consent routes with their outbox events in the order the transaction wrote them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from referrals.adapters.orm import outbox, referral_consents
from referrals.domain.consent import ConsentGiver, ConsentRecord, ConsentScope, ConsentStatus, RecordedVia

from .conftest import CAMHS, LA, SCHOOL, bearer, move, referral_body, submit


async def outbox_types(client: httpx.AsyncClient, referral_id: str) -> list[str]:
    """The types of the referral's events in the outbox, in the order they will be published."""
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        headers = (
            await conn.execute(
                select(outbox.store.c.headers)
                .where(outbox.store.c.message_key == referral_id)
                .order_by(outbox.store.c.position)
            )
        ).scalars()
        return [dict(h)["ce_type"] if isinstance(h, dict) else json.loads(h)["ce_type"] for h in headers]


async def test_the_repository_keeps_every_consent_event_as_recorded(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    make_uow = client.app.state.uow_factory  # type: ignore[attr-defined]
    withdrawn = ConsentRecord(
        referral_id=referral_id,
        version=2,
        status=ConsentStatus.WITHDRAWN,
        given_by=ConsentGiver.YOUNG_PERSON,
        scope=ConsentScope(),
        occurred_at=datetime(2026, 2, 1, 8, 30, 15, 123000, tzinfo=UTC),
        recorded_at=datetime(2026, 2, 1, 8, 31, tzinfo=UTC),
        event_id="0b9d1c7e-2f3a-4b5c-8d9e-0f1a2b3c4d5e",
        recorded_via=RecordedVia.FAMILY_VIEW,
        recorded_by_org_id=None,
        note="Ich möchte das nicht mehr: 'no more'",
    )
    async with make_uow() as uow:
        referral = await uow.referrals.get(referral_id)
        await uow.consents.add(referral, withdrawn)
        await uow.commit()
    async with make_uow() as uow:
        history = await uow.consents.history(referral_id)
    given, back = history
    assert (given.version, given.status, given.given_by, given.scope, given.note) == (
        1,
        ConsentStatus.GIVEN,
        ConsentGiver.PARENT,
        ConsentScope(("svc-camhs-core",), ()),
        "Referral to CAMHS",
    )
    assert (given.recorded_via, given.recorded_by_org_id, given.occurred_at) == (
        RecordedVia.API,
        SCHOOL,
        datetime(2026, 1, 5, 10, tzinfo=UTC),
    )
    assert back == withdrawn
    assert back.occurred_at.tzinfo is not None
    # Nobody else's: another referral's history is empty.
    async with make_uow() as uow:
        assert await uow.consents.history("00000000-0000-4000-8000-000000000000") == []


async def test_consent_is_changed_read_and_withdrawn_through_the_api(client: httpx.AsyncClient) -> None:
    body = referral_body()
    body["consent"]["scope_service_ids"] = ["svc-camhs-core", "svc-trust-slt"]
    referral_id = (await submit(client, body)).json()["id"]
    assert await outbox_types(client, referral_id) == [
        "uk.send.referral.submitted.v1",
        "uk.send.referral.consent.given.v1",
    ]
    changed = await client.post(
        f"/v1/referrals/{referral_id}/consent",
        json={"action": "change", "given_by": "parent", "scope_organisation_ids": [LA], "note": "The LA too."},
        headers={**bearer(CAMHS, "receiver"), "idempotency-key": "change-1"},
    )
    assert changed.status_code == 201, changed.text
    assert [e["status"] for e in changed.json()["events"]] == ["given", "changed"]
    shown = (await client.get(f"/v1/referrals/{referral_id}", headers=bearer(SCHOOL, "referrer"))).json()
    assert shown["consent"]["scope_organisation_ids"] == [LA]
    assert shown["consent"]["scope_service_ids"] == []  # a changed scope is exactly what was sent
    withdrawn = await client.post(
        f"/v1/referrals/{referral_id}/consent",
        json={"action": "withdraw", "given_by": "parent"},
        headers={**bearer(SCHOOL, "referrer"), "idempotency-key": "withdraw-1"},
    )
    assert withdrawn.status_code == 201, withdrawn.text
    assert (withdrawn.json()["referral_status"], withdrawn.json()["referral_version"]) == ("withdrawn", 2)
    assert await outbox_types(client, referral_id) == [
        "uk.send.referral.submitted.v1",
        "uk.send.referral.consent.given.v1",
        "uk.send.referral.consent.changed.v1",
        "uk.send.referral.consent.withdrawn.v1",
        "uk.send.referral.withdrawn.v1",  # the withdrawal of consent before acceptance ended the referral
    ]
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = (
            await conn.execute(
                select(referral_consents.c.consent_version, referral_consents.c.consent_status)
                .where(referral_consents.c.referral_id == referral_id)
                .order_by(referral_consents.c.consent_version)
            )
        ).all()
    assert [tuple(r) for r in rows] == [(1, "given"), (2, "changed"), (3, "withdrawn")]
    history = (await client.get(f"/v1/referrals/{referral_id}/history", headers=bearer(SCHOOL, "referrer"))).json()
    assert (history[-1]["status"], history[-1]["reason_code"]) == ("withdrawn", "consent_withdrawn")


async def test_a_hand_off_outside_consent_changes_nothing(client: httpx.AsyncClient) -> None:
    referral_id = (await submit(client)).json()["id"]
    refused = await move(
        client, referral_id, 1, CAMHS, "receiver", status="handed_off", target_service_id="svc-ehc-assessment"
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["rule"] == "outside_consent_scope"
    shown = (await client.get(f"/v1/referrals/{referral_id}", headers=bearer(CAMHS, "receiver"))).json()
    assert (shown["status"], shown["version"], shown["linked_to_id"]) == ("submitted", 1, None)
    assert await outbox_types(client, referral_id) == [
        "uk.send.referral.submitted.v1",
        "uk.send.referral.consent.given.v1",
    ]
