"""The notifications service on a migrated real database, with helpers that feed it events."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from notifications.adapters.orm import deliveries
from notifications.adapters.unit_of_work import SqlUnitOfWork
from notifications.bootstrap import build_app
from notifications.entrypoints.cli import main as cli_main
from notifications.service_layer.fanout import fan_out, read_ahead
from notifications.settings import NotificationsSettings
from send_devkit.tokens import mint_token
from send_devkit.webhook_receiver import Receiver
from send_shared.db import create_engine, session_factory
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    ORGANISATION_UPSERTED,
    OrganisationV1,
    ReferralEventV1,
    ReferralStatus,
    referral_event_type,
)

SCHOOL, CAMHS, OTHER = "org-school", "org-camhs", "org-other-school"
LA = "org-la"
DIRECTORY = {SCHOOL: "school", CAMHS: "camhs", OTHER: "school", LA: "local_authority"}  # kind of each
_ids = itertools.count(1)


@pytest.fixture
async def unit_of_work(database_url: str) -> AsyncIterator[Any]:
    """Units of work on a migrated database of each kind, without the app."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", database_url)
        await asyncio.to_thread(cli_main, ["migrate"])
    engine = create_engine(database_url)
    try:
        yield partial(SqlUnitOfWork, session_factory(engine))
    finally:
        await engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
async def app(database_url: str, kafka_bootstrap: str) -> AsyncIterator[object]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", database_url)
        await asyncio.to_thread(cli_main, ["migrate"])
    settings = NotificationsSettings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, run_workers=False,
        webhooks_allow_private_targets=True,
    )  # fmt: skip
    application = build_app(settings)
    await consume(application, *(organisation_event(org, kind=kind) for org, kind in DIRECTORY.items()))
    yield application
    await application.state.runtime.engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture
async def api(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:  # type: ignore[arg-type]
        yield http


def bearer(org: str, role: str = "receiver") -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(org, role)}"}


def referral_event(referral_id: str, version: int, status: str, *, referrer: str = SCHOOL, receiver_org: str = CAMHS,
                   service: str = "svc-camhs-core", urgency: str = "routine") -> CloudEvent:  # fmt: skip
    now = datetime.now(UTC)
    data = ReferralEventV1(
        referral_id=referral_id, version=version, status=ReferralStatus(status), child_ref="c" * 32,
        referrer_org_id=referrer, service_id=service, receiving_org_id=receiver_org, urgency=urgency,
        occurred_at=now, recorded_at=now,
    )  # fmt: skip
    return CloudEvent(id=f"evt-{next(_ids)}", type=referral_event_type(status), source="/send/referrals",
                      subject=referral_id, data=data.model_dump(mode="json"))  # fmt: skip


async def consume(app: object, *events: CloudEvent) -> None:
    """What the consumer does with each event (its inbox aside)."""
    await _consume(app.state.unit_of_work, events)  # type: ignore[attr-defined]


async def consume_batch(app: object, *events: CloudEvent) -> None:
    """What the consumer does with a batch in one transaction: reads ahead for it, then each event."""
    async with app.state.unit_of_work() as uow:  # type: ignore[attr-defined]
        await read_ahead(events, uow)
        for event in events:
            await fan_out(event, uow, referral_link_template="http://referrals.test/v1/referrals/{referral_id}")
        await uow.commit()


async def _consume(unit_of_work: Any, events: Iterable[CloudEvent]) -> None:
    for event in events:
        async with unit_of_work() as uow:
            await fan_out(event, uow, referral_link_template="http://referrals.test/v1/referrals/{referral_id}")
            await uow.commit()


def organisation_event(organisation_id: str, version: int = 1, *, kind: str = "camhs") -> CloudEvent:
    """The directory's event for an organisation, as the referrals service publishes it."""
    data = OrganisationV1(organisation_id=organisation_id, version=version, name=organisation_id, kind=kind,
                          area_id="la-northshire")  # fmt: skip
    return CloudEvent(id=f"evt-{next(_ids)}", type=ORGANISATION_UPSERTED, source="/send/referrals",
                      subject=organisation_id, data=data.model_dump(mode="json"))  # fmt: skip


async def _consume_into(database_url: str, events: list[CloudEvent]) -> None:
    engine = create_engine(database_url)
    try:
        await _consume(partial(SqlUnitOfWork, session_factory(engine)), events)
    finally:
        await engine.dispose()


def seed_directory(database_url: str, *organisation_ids: str) -> None:
    """Puts organisations in a (migrated) database through the consumer's handler, as their directory
    events would: for a service run as a process, whose tokens must name organisations it knows."""
    asyncio.run(_consume_into(database_url, [organisation_event(org) for org in organisation_ids]))


def succeeded_in_books(database_url: str) -> list[str]:
    """The event ids of the deliveries the service has recorded as succeeded, sorted (one per success)."""

    async def read() -> list[str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(select(deliveries.c.event_id).where(deliveries.c.status == "succeeded"))
                return sorted(r[0] for r in rows)
        finally:
            await engine.dispose()

    return asyncio.run(read())
