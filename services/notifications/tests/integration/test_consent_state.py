"""The consent in force per referral, kept in notifications' own database (SQLite and PostgreSQL): the newest
consent version wins, a repeat or a stale one changes nothing, and the fan-out reads it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from notifications.adapters.orm import consents, messages
from notifications.domain.consent import ConsentState
from notifications.service_layer.fanout import fan_out, read_ahead
from send_shared.db import create_engine
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import ConsentGiver, ConsentStatus, ReferralConsentV1

from .conftest import referral_event

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


async def record(unit_of_work: Any, state: ConsentState) -> bool:
    async with unit_of_work() as uow:
        kept = await uow.consents.record(state, NOW)
        await uow.commit()
    return bool(kept)


async def kept(unit_of_work: Any, referral_id: str) -> Any:
    async with unit_of_work() as uow:
        return await uow.consents.of(referral_id)


async def test_the_newest_consent_version_wins_in_any_order(unit_of_work: Any) -> None:
    referral = f"r-{uuid.uuid4().hex[:8]}"
    assert await kept(unit_of_work, referral) is None
    assert await record(unit_of_work, ConsentState(referral, 1, ConsentStatus.GIVEN)) is True
    assert await record(unit_of_work, ConsentState(referral, 3, ConsentStatus.GIVEN)) is True
    assert await record(unit_of_work, ConsentState(referral, 2, ConsentStatus.WITHDRAWN)) is False
    assert await record(unit_of_work, ConsentState(referral, 3, ConsentStatus.WITHDRAWN)) is False
    assert await kept(unit_of_work, referral) == ConsentState(referral, 3, ConsentStatus.GIVEN)
    assert await record(unit_of_work, ConsentState(referral, 4, ConsentStatus.WITHDRAWN)) is True
    assert await kept(unit_of_work, referral) == ConsentState(referral, 4, ConsentStatus.WITHDRAWN)
    assert await kept(unit_of_work, "another") is None


def consent_event(referral_id: str, version: int, status: str) -> CloudEvent:
    data = ReferralConsentV1(
        referral_id=referral_id, consent_version=version, consent_status=ConsentStatus(status),
        given_by=ConsentGiver.PARENT, child_ref="c" * 32, referrer_org_id="org-school",
        service_id="svc-camhs-core", receiving_org_id="org-camhs", occurred_at=NOW, recorded_at=NOW,
    )  # fmt: skip
    return CloudEvent(id=f"evt-{uuid.uuid4().hex}", type=f"uk.send.referral.consent.{status}.v1",
                      source="/send/referrals", subject=referral_id, data=data.model_dump(mode="json"))  # fmt: skip


@pytest.mark.parametrize("batched", [False, True], ids=["one-transaction-each", "one-batch-read-ahead"])
async def test_after_a_withdrawal_the_messages_concern_the_receiver_only(
    unit_of_work: Any, database_url: str, batched: bool
) -> None:
    """One transaction an event, or all in one consumer batch whose versions and consents were read ahead: a
    withdrawal in the batch still narrows who hears the events after it, and each version follows the last."""
    referral = f"r-{uuid.uuid4().hex[:8]}"
    events = [referral_event(referral, 1, "submitted"), consent_event(referral, 1, "given"),
              referral_event(referral, 2, "accepted"), consent_event(referral, 2, "withdrawn"),
              consent_event(referral, 1, "given"), referral_event(referral, 3, "scheduled")]  # fmt: skip
    for batch in [events] if batched else [[event] for event in events]:
        async with unit_of_work() as uow:
            if batched:
                await read_ahead(batch, uow)
            for event in batch:
                await fan_out(event, uow, referral_link_template="{referral_id}")
            await uow.commit()
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(messages.c.event_id, messages.c.organisation_ids))
            audience = {event_id: sorted(orgs) for event_id, orgs in rows}
            status = (
                await conn.execute(select(consents.c.consent_status).where(consents.c.referral_id == referral))
            ).scalar_one()
    finally:
        await engine.dispose()
    both = ["org-camhs", "org-school"]
    assert [audience.get(e.id) for e in events] == [both, both, both, both, None, ["org-camhs"]]
    assert status == "withdrawn"
    async with unit_of_work() as uow:  # the versions set in the transaction were written at its end
        assert await uow.referral_order.last_sent(referral) == 3


async def test_the_last_version_sent_and_the_consent_are_read_together_whichever_is_held(unit_of_work: Any) -> None:
    referral = f"r-{uuid.uuid4().hex[:8]}"

    async def both() -> Any:
        async with unit_of_work() as uow:
            return await uow.referral_order.last_sent_and_consent(referral)

    assert await both() == (None, None)
    await record(unit_of_work, ConsentState(referral, 2, ConsentStatus.WITHDRAWN))
    assert await both() == (None, ConsentState(referral, 2, ConsentStatus.WITHDRAWN))
    async with unit_of_work() as uow:
        await uow.referral_order.set_last_sent(referral, 4)
        await uow.referral_order.set_last_sent("another", 9)
        await uow.commit()
    assert await both() == (4, ConsentState(referral, 2, ConsentStatus.WITHDRAWN))
    async with unit_of_work() as uow:
        assert await uow.referral_order.last_sent_and_consent("another") == (9, None)


async def test_the_last_version_sent_never_goes_back(unit_of_work: Any) -> None:
    """A transaction that set an older version (the consumer's versions are written at its end) leaves a newer one
    another transaction wrote (the held-events worker's) as it is."""
    referral = f"r-{uuid.uuid4().hex[:8]}"
    for version in (5, 3):
        async with unit_of_work() as uow:
            await uow.referral_order.set_last_sent(referral, version)
            await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.referral_order.last_sent(referral) == 5
