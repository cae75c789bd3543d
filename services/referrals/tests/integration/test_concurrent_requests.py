"""Requests that race: each answers as if they had come one after another, never a 500 or a second copy."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from referrals.adapters.orm import idempotency_keys, referrals
from send_shared.db import is_unique_violation

from .conftest import SCHOOL, bearer, count, referral_body, referral_events, submit

_RACERS = 6


async def test_retries_with_one_idempotency_key_get_the_one_referral(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*[submit(client, key="retried") for _ in range(_RACERS)])
    assert [a.status_code for a in answers] == [201] * _RACERS, [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert [await count(client, t) for t in (referrals, idempotency_keys)] == [1, 1]
    assert await referral_events(client) == 2  # submitted and consent.given, once


async def test_one_child_referred_to_one_service_at_once_is_one_referral_and_409s(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*[submit(client, key=f"school-{i}") for i in range(_RACERS)])
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * (_RACERS - 1), [a.text for a in answers]
    created = next(a.json()["id"] for a in answers if a.status_code == 201)
    assert all(a.json()["existing_referral"].endswith(created) for a in answers if a.status_code == 409)
    assert await count(client, referrals) == 1


async def test_the_database_refuses_a_second_open_referral_for_a_child_at_a_service(
    client: httpx.AsyncClient,
) -> None:
    first = (await submit(client)).json()
    async with client.app.state.runtime.engine.begin() as conn:  # type: ignore[attr-defined]
        copy = text(
            "INSERT INTO referrals SELECT 'copy' AS id, child_ref, referrer_org_id, service_id, receiving_org_id, "
            "urgency, primary_need, secondary_need, is_ehc, :status AS status, held_from, version, referred_at, "
            "status_at, linked_from_id, linked_to_id, parallel_referral_ids, last_reason_code, last_outcome_code, "
            "signposted_service_id, appointment_at, expected_resume, updated_at FROM referrals WHERE id = :id"
        )
        await conn.execute(copy, {"status": "withdrawn", "id": first["id"]})  # a closed one beside it is allowed
        nested = await conn.begin_nested()
        with pytest.raises(IntegrityError) as refused:
            await conn.execute(copy.bindparams(status="accepted"), {"id": first["id"]})
        await nested.rollback()
    assert is_unique_violation(refused.value)  # what the unit of work turns into a WriteConflict
    headers = {**bearer(SCHOOL, "referrer"), "idempotency-key": "after"}
    again = await client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert again.status_code == 409
