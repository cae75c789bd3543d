"""Fixtures for the fuzz tests: each service's app, built in-process as the integration suites build it
(migrated through its own CLI, real PostgreSQL or SQLite, the session's broker, ``run_workers=False``),
seeded with a little data so that path parameters can name real objects.

Every request reaches an app through Schemathesis's ASGI client, which runs the app (and its lifespan)
on one event loop in a thread of its own; seeding that goes through the database directly uses an
engine of its own on a loop of its own, before or beside the app's engine, never sharing it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from schemathesis.python import asgi

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

# Organisations of the referrals service's seed directory (referrals/seed/directory.json); the other
# services learn the directory from events, and the fuzz fixtures feed them the same organisations.
AREA = "la-northshire"
SCHOOL = "org-riverside-primary"
CAMHS = "org-northshire-camhs"
LA = "org-northshire-la"
CAMHS_SERVICE = "svc-camhs-core"
EHC_SERVICE = "svc-ehc-assessment"

# (organisation, role): a school referrer, a CAMHS receiver, the local authority's ops and admin, and a
# platform admin; None sends no token at all.
FUZZ_IDENTITIES: tuple[tuple[str, str] | None, ...] = (
    (SCHOOL, "referrer"),
    (CAMHS, "receiver"),
    (LA, "ops"),
    (LA, "admin"),
    (LA, "platform_admin"),
    None,
)
SERVICES = ("referrals", "waitlists", "notifications")


@dataclass
class FuzzTarget:
    service: str
    backend: str
    app: FastAPI
    # Path or query parameter name -> values naming seeded objects (a case sometimes uses one of these).
    known: dict[str, list[str]] = field(default_factory=dict)

    def callers(self) -> list[tuple[str, dict[str, str]]]:
        """(who, headers) for each of FUZZ_IDENTITIES."""
        return [
            ("no token", {}) if who is None else (f"{who[1]} of {who[0]}", _bearer(*who)) for who in FUZZ_IDENTITIES
        ]


def _migrate(service: str, database_url: str) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", database_url)
        if service == "referrals":
            from referrals.entrypoints.cli import main as referrals_cli

            referrals_cli(["migrate"])
        elif service == "waitlists":
            from waitlists.entrypoints.cli import main as waitlists_cli

            waitlists_cli(["migrate"])
        else:
            from notifications.entrypoints.cli import main as notifications_cli

            notifications_cli(["migrate"])


def build_service_app(service: str, database_url: str, kafka_bootstrap: str) -> FastAPI:
    """The service's app as its integration suite builds it (nothing starts until its lifespan does)."""
    common: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": kafka_bootstrap,
        "run_workers": False,
    }
    if service == "referrals":
        from referrals.bootstrap import build_app as build_referrals
        from referrals.settings import ReferralsSettings

        return build_referrals(ReferralsSettings(**common))
    if service == "waitlists":
        from waitlists.bootstrap import build_app as build_waitlists
        from waitlists.settings import WaitlistsSettings

        return build_waitlists(WaitlistsSettings(**common))
    from notifications.bootstrap import build_app as build_notifications
    from notifications.settings import NotificationsSettings

    # As the integration suite: webhook URLs on loopback are allowed (the seeded endpoint uses one).
    return build_notifications(NotificationsSettings(**common, webhooks_allow_private_targets=True))


def _bearer(org: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(org, role)}"}


def _referral_body(service_id: str) -> dict[str, Any]:
    return {
        "service_id": service_id,
        "child": {
            "given_name": "Sam",
            "family_name": "Taylor",
            "date_of_birth": "2015-04-12",
            "nhs_number": "9434765919",
        },
        "primary_need": "SEMH",
        "reason": "Persistent anxiety affecting attendance.",
        "urgency": "routine",
        "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "Referral to CAMHS"},
    }


def _seed_referrals(app: FastAPI) -> dict[str, list[str]]:
    ids: list[str] = []
    with asgi.get_client(app) as http:
        for n, service_id in enumerate((CAMHS_SERVICE, "svc-camhs-eating-disorders")):
            headers = {**_bearer(SCHOOL, "referrer"), "Idempotency-Key": f"fuzz-seed-{n}"}
            created = http.post("/v1/referrals", json=_referral_body(service_id), headers=headers)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        accepted = http.post(
            f"/v1/referrals/{ids[0]}/status",
            json={"status": "accepted"},
            headers={**_bearer(CAMHS, "receiver"), "If-Match": '"1"'},
        )
        assert accepted.status_code == 200, accepted.text
    return {
        "referral_id": ids,
        "service_id": [CAMHS_SERVICE, EHC_SERVICE],
        "organisation_id": [SCHOOL, CAMHS],
    }


def _directory_events() -> list[CloudEvent]:
    orgs = [(SCHOOL, "school"), (CAMHS, "camhs"), (LA, "local_authority")]
    services = [
        (CAMHS_SERVICE, CAMHS, ["cypmh_4w"], None),
        (EHC_SERVICE, LA, ["ehc_decision_6w", "ehc_plan_20w"], None),
    ]
    events = [
        CloudEvent(type=ORGANISATION_UPSERTED, source="/fuzz", subject=org,
                   data=OrganisationV1(organisation_id=org, version=1, name=org, kind=kind,
                                       area_id=AREA).model_dump(mode="json"))
        for org, kind in orgs
    ]  # fmt: skip
    events += [
        CloudEvent(type=SERVICE_UPSERTED, source="/fuzz", subject=svc,
                   data=ServiceV1(service_id=svc, version=1, organisation_id=org, name=svc, needs=["SEMH"],
                                  urgencies=["routine"], clocks=clocks, target_days=target).model_dump(mode="json"))
        for svc, org, clocks, target in services
    ]  # fmt: skip
    return events


def _referral_changes(
    referral_id: str, service_id: str, receiving: str, *changes: tuple[str, date]
) -> list[CloudEvent]:
    events = []
    for version, (status, day) in enumerate(changes, start=1):
        at = datetime.combine(day, time(10), tzinfo=UTC)
        data = ReferralEventV1(
            referral_id=referral_id, version=version, status=ReferralStatus(status), child_ref=uuid.uuid5(
                uuid.NAMESPACE_URL, referral_id).hex, referrer_org_id=SCHOOL, service_id=service_id,
            receiving_org_id=receiving, urgency="routine", occurred_at=at, recorded_at=at,
        )  # fmt: skip
        events.append(
            CloudEvent(
                id=f"evt-{referral_id}-{version}",
                type=referral_event_type(status),
                source="/send/referrals",
                subject=referral_id,
                data=data.model_dump(mode="json"),
            )
        )
    return events


async def _feed_waitlists(database_url: str, events: list[CloudEvent]) -> None:
    from waitlists.bootstrap import handle_referral_event, refresh_facts

    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        for event in events:
            async with sessions() as session, session.begin():
                await handle_referral_event(event, session)
                await refresh_facts(session)
    finally:
        await engine.dispose()


def _seed_waitlists(database_url: str) -> dict[str, list[str]]:
    today = datetime.now(UTC).date()
    waiting, started = str(uuid.uuid4()), str(uuid.uuid4())
    events = _directory_events()
    events += _referral_changes(waiting, CAMHS_SERVICE, CAMHS, ("submitted", today - timedelta(days=40)))
    events += _referral_changes(
        started, EHC_SERVICE, LA, ("submitted", today - timedelta(days=90)), ("accepted", today - timedelta(days=60))
    )
    asyncio.run(_feed_waitlists(database_url, events))
    return {
        "referral_id": [waiting, started],
        "scope_id": [CAMHS_SERVICE, EHC_SERVICE, CAMHS, LA, AREA],
        "area_id": [AREA],
    }


async def _fan_out(database_url: str, events: list[CloudEvent]) -> None:
    from notifications.adapters.unit_of_work import SqlUnitOfWork
    from notifications.service_layer.fanout import fan_out

    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        for event in events:
            async with SqlUnitOfWork(sessions) as uow:
                await fan_out(event, uow, referral_link_template="http://referrals.test/v1/referrals/{referral_id}")
                await uow.commit()
    finally:
        await engine.dispose()


def _seed_notifications(app: FastAPI, database_url: str) -> dict[str, list[str]]:
    asyncio.run(_fan_out(database_url, _directory_events()))  # notifications serves only organisations it knows
    endpoint_ids: list[str] = []
    with asgi.get_client(app) as http:
        for org, role in ((CAMHS, "receiver"), (SCHOOL, "referrer"), (LA, "admin")):
            body = {"url": "http://127.0.0.1:9/hook", "event_types": ["*"], "description": f"fuzz seed {org}"}
            created = http.post("/v1/endpoints", json=body, headers=_bearer(org, role))
            assert created.status_code == 201, created.text
            endpoint_ids.append(created.json()["id"])
    now = datetime.now(UTC).date()
    referral_id = str(uuid.uuid4())
    asyncio.run(
        _fan_out(
            database_url, _referral_changes(referral_id, CAMHS_SERVICE, CAMHS, ("submitted", now), ("accepted", now))
        )
    )
    with asgi.get_client(app) as http:
        listed = http.get(f"/v1/endpoints/{endpoint_ids[0]}/deliveries", headers=_bearer(CAMHS, "receiver"))
        assert listed.status_code == 200, listed.text
        delivery_ids = [str(d["id"]) for d in listed.json()]
    return {"endpoint_id": endpoint_ids, "delivery_id": delivery_ids}


@pytest.fixture
def fuzz_targets(
    postgres_server: Any, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str, str], FuzzTarget]]:
    """``make(service, backend)``: a migrated, seeded app of the service on a fresh database of that
    backend ("postgresql" or "sqlite"); every app's lifespan is stopped at the end of the test."""

    def make(service: str, backend: str) -> FuzzTarget:
        assert service in SERVICES, service
        if backend == "postgresql":
            database_url = postgres_server.new_database(f"fuzz_{service}")
        else:
            database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp(f'fuzz-{service}') / 'fuzz.db'}"
        _migrate(service, database_url)
        if service == "waitlists":
            known = _seed_waitlists(database_url)  # through the consumer, before the app opens its engine
            app = build_service_app(service, database_url, kafka_bootstrap)
        else:
            app = build_service_app(service, database_url, kafka_bootstrap)
            known = _seed_referrals(app) if service == "referrals" else _seed_notifications(app, database_url)
        return FuzzTarget(service, backend, app, known)

    try:
        yield make
    finally:
        asgi.shutdown_lifespans()  # runs each app's lifespan shutdown: workers stop, engines are disposed
