"""A migrated real database (PostgreSQL and SQLite) and helpers that feed it events as the consumer would."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from send_devkit.tokens import mint_token
from send_shared.db import create_engine, session_factory
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    ORGANISATION_UPSERTED,
    SERVICE_UPSERTED,
    OrganisationV1,
    ReferralEventV1,
    ReferralStatus,
    ServiceV1,
    referral_event_type,
)
from waitlists.bootstrap import build_app, handle_referral_event, refresh_facts
from waitlists.entrypoints.cli import main as cli_main
from waitlists.settings import WaitlistsSettings

_ids = itertools.count(1)
ORGS = [("org-school", "school"), ("org-camhs", "camhs"), ("org-la", "local_authority")]
SERVICES = [
    ("svc-camhs", "org-camhs", ["cypmh_4w"], None),
    ("svc-ehc", "org-la", ["ehc_decision_6w", "ehc_no_plan_16w", "ehc_plan_20w"], None),
    ("svc-slt", "org-camhs", ["service_target"], 56),
]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", database_url)
        await asyncio.to_thread(cli_main, ["migrate"])
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def feed(engine: AsyncEngine, *events: CloudEvent) -> None:
    sessions = session_factory(engine)
    for event in events:
        async with sessions() as session, session.begin():
            await handle_referral_event(event, session)
            await refresh_facts(session)


def directory_events(version: int = 1) -> list[CloudEvent]:
    found = [
        CloudEvent(type=ORGANISATION_UPSERTED, source="/t", subject=org,
                   data=OrganisationV1(organisation_id=org, version=version, name=org, kind=kind,
                                       area_id="la-test").model_dump(mode="json"))
        for org, kind in ORGS
    ]  # fmt: skip
    found += [
        CloudEvent(type=SERVICE_UPSERTED, source="/t", subject=svc,
                   data=ServiceV1(service_id=svc, version=version, organisation_id=org, name=svc, needs=["SEMH"],
                                  urgencies=["routine"], clocks=clocks, target_days=target).model_dump(mode="json"))
        for svc, org, clocks, target in SERVICES
    ]  # fmt: skip
    return found


def referral_events(
    referral_id: str,
    child: str,
    service: str,
    *changes: tuple[str | None, ...],
    urgency: str = "routine",
    receiving: str | None = None,
    needs: tuple[str | None, str | None] = (None, None),
) -> list[CloudEvent]:
    """(status, YYYY-MM-DD[, reason][, outcome]) changes as the referrals service would publish them."""
    receiving = receiving or next(org for svc, org, _, _ in SERVICES if svc == service)
    events = []
    for version, (status, day, *codes) in enumerate(changes, start=1):
        reason, outcome = [*codes, None, None][:2]
        assert status is not None and day is not None
        at = datetime.combine(datetime.fromisoformat(day).date(), time(10), tzinfo=UTC)
        data = ReferralEventV1(
            referral_id=referral_id, version=version, status=ReferralStatus(status), child_ref=child,
            referrer_org_id="org-school", service_id=service, receiving_org_id=receiving, urgency=urgency,
            primary_need=needs[0], secondary_need=needs[1], occurred_at=at, recorded_at=at, reason_code=reason,
            outcome_code=outcome,
        )  # fmt: skip
        events.append(
            CloudEvent(
                id=f"evt-{next(_ids)}",
                type=referral_event_type(status),
                source="/send/referrals",
                subject=referral_id,
                data=data.model_dump(mode="json"),
            )
        )
    return events


@pytest.fixture
async def api(engine: AsyncEngine, database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        WaitlistsSettings(database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, run_workers=False)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http
    await app.state.runtime.engine.dispose()


def ops() -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token('org-la', 'ops')}"}


def as_org(organisation_id: str, role: str = "receiver") -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(organisation_id, role)}"}
