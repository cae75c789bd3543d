"""Who may do what, from every app's route table.

Every route of the three services is called by four organisations (the referring school, the receiving
CAMHS, an unrelated school, and one missing from the directory) in every role, and without a token.
The expectation for each route is written here from the rules (brief §6, issue #13), not from the code:
a caller allowed to act gets a 2xx; anyone else gets 401, 403 or 404, the database is unchanged
byte for byte afterwards, and no response to a stranger carries the child's details or the referral id.
Every answer carries the security headers.
The pages a signed-in browser reads (its session cookie, never a bearer header) are called the same way, each
caller signed in as itself: only a reader of a referral sees it, the listing shows a caller only the referrals its
organisation sent or receives, and everyone else is sent to sign in, refused or told there is nothing there.
Every GET route is called again with the session cookie instead of the bearer header, under the same rule.
A route that is added without an expectation fails the first test, whatever kind of route it is (a FastAPI
route, a plain Starlette route or a mount); routes authorised otherwise are listed, with why, in EXEMPT.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute, Mount, Route

from send_devkit.tokens import mint_token
from send_shared.auth import SESSION_COOKIE, Role
from send_shared.db import session_factory
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

SCHOOL, CAMHS, OTHER, UNKNOWN = "org-riverside-primary", "org-northshire-camhs", "org-millbrook-primary", "org-nowhere"
SERVICE = "svc-camhs-core"
ORGS = (SCHOOL, CAMHS, OTHER, UNKNOWN)
ROLES = tuple(Role)
CHILD = {"given_name": "Matrixa", "family_name": "Oraclesson", "nhs_number": "9434765919"}
NO_LIMITS = {"rate_limit_writes_per_second": 0, "rate_limit_reads_per_second": 0}
SUMMARY = Path(__file__).resolve().parents[2] / "test-artefacts" / "authorization-matrix.json"


@dataclass(frozen=True)
class Caller:
    org: str | None
    role: Role | None

    @property
    def headers(self) -> dict[str, str]:
        if self.org is None or self.role is None:
            return {}
        return {"authorization": f"Bearer {mint_token(self.org, self.role)}"}

    @property
    def signed_in(self) -> dict[str, str]:
        """The same identity as a signed-in browser sends it: the session cookie, no bearer header."""
        if self.org is None or self.role is None:
            return {}
        return {"cookie": f"{SESSION_COOKIE}={mint_token(self.org, self.role)}"}

    def __str__(self) -> str:
        return "anonymous" if self.role is None else f"{self.role.value}@{self.org}"


CALLERS = [Caller(None, None), *(Caller(org, role) for org in ORGS for role in ROLES)]


def known(c: Caller) -> bool:
    return c.org in (SCHOOL, CAMHS, OTHER)


def roles(*allowed: Role, orgs: tuple[str, ...] = (SCHOOL, CAMHS, OTHER)) -> Callable[[Caller], bool]:
    return lambda c: c.role in allowed and c.org in orgs


R, RX, OPS, ADM, PLAT = Role.REFERRER, Role.RECEIVER, Role.OPS, Role.ADMIN, Role.PLATFORM_ADMIN


def reads_the_referral(c: Caller) -> bool:
    """Personal details: the referrer's referrer role and the receiving organisation's receiver role."""
    return (c.org, c.role) in {(SCHOOL, R), (CAMHS, RX)}


def party_to_the_referral(c: Caller) -> bool:
    """Clocks carry no personal details: any reader role at either organisation."""
    return c.org in (SCHOOL, CAMHS) and c.role in (R, RX, OPS, ADM)


# (method, path) -> who may; the request each caller sends comes from REQUESTS below.
EXPECTED: dict[str, dict[tuple[str, str], Callable[[Caller], bool]]] = {
    "referrals": {
        ("POST", "/v1/referrals"): roles(R),
        ("GET", "/v1/referrals"): roles(R, RX),
        ("GET", "/v1/referrals/{referral_id}"): reads_the_referral,
        ("GET", "/v1/referrals/{referral_id}/history"): reads_the_referral,
        ("POST", "/v1/referrals/{referral_id}/status"): reads_the_referral,
        # Consent (issue #17): read and recorded by the referral's readers only (its notes are the family's words).
        ("GET", "/v1/referrals/{referral_id}/consent"): reads_the_referral,
        ("POST", "/v1/referrals/{referral_id}/consent"): reads_the_referral,
        ("POST", "/v1/referrals/{referral_id}/family-links"): reads_the_referral,
        ("GET", "/v1/referrals/{referral_id}/family-links"): reads_the_referral,
        ("DELETE", "/v1/referrals/{referral_id}/family-links/{link_id}"): reads_the_referral,
        # Erasure and subject access (issue #17): the referral's readers; a subject access request by another
        # organisation (or the other role) is answered, with nothing in it.
        ("POST", "/v1/referrals/{referral_id}/erasure"): reads_the_referral,
        ("POST", "/v1/subject-access"): roles(R, RX),
        ("POST", "/v1/referrals/import"): roles(R, RX),
        ("GET", "/v1/directory/organisations"): lambda c: c.role is not None,
        ("GET", "/v1/directory/services"): lambda c: c.role is not None,
        ("PUT", "/v1/directory/organisations/{organisation_id}"): lambda c: c.role is PLAT,
        ("PUT", "/v1/directory/services/{service_id}"): lambda c: c.role is PLAT or (c.org, c.role) == (CAMHS, ADM),
        # Support while waiting (issue #18): offers are directory data; a take-up is recorded by the referral's readers.
        ("GET", "/v1/directory/interim-offers"): lambda c: c.role is not None,
        ("PUT", "/v1/directory/interim-offers/{offer_id}"): lambda c: c.role is PLAT or (c.org, c.role) == (CAMHS, ADM),
        ("POST", "/v1/referrals/{referral_id}/signposts/{offer_id}/take-up"): reads_the_referral,
        ("GET", "/v1/audit"): lambda c: c.role is PLAT or (known(c) and c.role is ADM),
    },
    "waitlists": {
        ("GET", "/v1/metrics/{scope}/{scope_id}"): roles(R, RX, OPS, ADM),
        ("GET", "/v1/referrals/{referral_id}/clocks"): party_to_the_referral,
        ("GET", "/v1/exports/ehc-timeliness.csv"): roles(R, RX, OPS, ADM),
        ("GET", "/v1/exports/rtt-distribution.csv"): roles(R, RX, OPS, ADM),
        ("GET", "/v1/dashboard/scopes"): roles(OPS, ADM),
        ("GET", "/v1/dashboard/trend"): roles(OPS, ADM),
        ("GET", "/v1/dashboard/services"): roles(OPS, ADM),
        # Demand, capacity and the breach forecast (issue #18): the figures' readers, the figures' disclosure control.
        ("GET", "/v1/capacity/{scope}/{scope_id}/weekly"): roles(R, RX, OPS, ADM),
        ("GET", "/v1/capacity/{scope}/{scope_id}/forecast"): roles(R, RX, OPS, ADM),
        ("GET", "/v1/exports/capacity-weekly.csv"): roles(R, RX, OPS, ADM),
        ("GET", "/v1/exports/breach-forecast.csv"): roles(R, RX, OPS, ADM),
        ("GET", "/v1/impact/{scope}/{scope_id}"): roles(R, RX, OPS, ADM),
        ("GET", "/v1/exports/impact.csv"): roles(R, RX, OPS, ADM),
        # Predicted waits (issue #18): the figures' readers; counts of 1 to 4 withheld from other organisations.
        ("GET", "/v1/services/{service_id}/predicted-wait"): roles(R, RX, OPS, ADM),
        ("GET", "/v1/predicted-waits"): roles(R, RX, OPS, ADM),
    },
    "notifications": {
        ("POST", "/v1/endpoints"): roles(R, RX, ADM),
        ("GET", "/v1/endpoints"): roles(R, RX, ADM),
        **{
            (method, f"/v1/endpoints/{{endpoint_id}}{tail}"): roles(R, RX, ADM, orgs=(CAMHS,))
            for method, tail in [
                ("GET", ""),
                ("PUT", ""),
                ("POST", "/pause"),
                ("POST", "/resume"),
                ("POST", "/rotate-secret"),
                ("POST", "/test"),
                ("DELETE", ""),
                ("GET", "/deliveries"),
                ("POST", "/deliveries/{delivery_id}/redeliver"),
                ("POST", "/redeliver"),
                ("POST", "/retry-now"),
            ]
        },
        ("PUT", "/v1/contacts"): roles(R, RX, ADM),
        ("GET", "/v1/email-preferences"): roles(R, RX, ADM),
        ("PUT", "/v1/email-preferences"): roles(R, RX, ADM),
    },
}

# Pages a signed-in browser reads (HTML, authorised by the session cookie): who gets what is page_outcome below.
PAGES: dict[str, set[tuple[str, str]]] = {
    "referrals": {("GET", "/referrals/"), ("GET", "/referrals/{referral_id}")},
}

# Open to everyone by design: liveness, readiness and Prometheus (see README, "What production exposes"),
# the OpenAPI document and the API docs pages with their assets (they hold no data: every call from them needs
# a token) and browser sign-in.
OPERATIONS = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"),
              ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"), ("MOUNT", "/docs-assets"),
              ("GET", "/signin"), ("GET", "/signin/callback"), ("POST", "/signin/development"), ("POST", "/signout")}  # fmt: skip

# Routes whose authorisation is not a role at an organisation, each with where it is tested. Every one must exist
# (a stale entry fails) and any route that is in none of EXPECTED, PAGES, OPERATIONS and EXEMPT fails.
EXEMPT: dict[str, dict[tuple[str, str], str]] = {
    "referrals": {
        # The family view (issue #17): authorised by the link's secret token (256 bits, only its hash stored), not
        # by a role; expired, revoked and unknown tokens, rate limits and CSRF are tested in referrals'
        # unit tests (test_family_routes.py), the browser test (tests/e2e/test_family_view.py) and, for every caller
        # of this matrix, test_family_pages_answer_the_token_not_the_caller below.
        ("GET", "/family/{token}"): "family link token",
        ("POST", "/family/{token}/contact"): "family link token",
        ("GET", "/family/{token}/withdraw"): "family link token",
        ("POST", "/family/{token}/withdraw"): "family link token",
        ("POST", "/family/{token}/take-up"): "family link token",
    },
    "waitlists": {
        # The dashboard's own files (HTML, script, style): the same for everyone and without data (checked in
        # test_the_dashboard_files_hold_no_data); its data comes from the GET routes above, which are called with
        # the session cookie too.
        ("MOUNT", "/dashboard"): "static files, no data",
    },
    "notifications": {},
}


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route, walking included routers: FastAPI routes, plain Starlette routes (a method
    each) and mounts ("MOUNT", path); any other kind of route is named by its class, so that it fails as unlisted."""

    def walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
        for route in routes:
            included = getattr(route, "include_context", None)
            if included is not None:
                yield from walk(route.original_router.routes, prefix + included.prefix)  # type: ignore[attr-defined]
            elif isinstance(route, APIRoute | Route):
                for method in route.methods or {"ANY"}:
                    yield method, prefix + route.path
            elif isinstance(route, Mount):
                yield "MOUNT", prefix + route.path
            else:
                yield type(route).__name__, prefix + str(getattr(route, "path", route))

    return set(walk(list(app.routes)))


# --- the system under test --------------------------------------------------------------------------


@dataclass
class System:
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    referral_id: str
    endpoint_id: str
    delivery_id: int
    family_link_id: str | None = None

    async def fingerprint(self, service: str) -> str:
        engine: AsyncEngine = self.apps[service].state.runtime.engine
        digest = hashlib.sha256()
        async with engine.connect() as conn:
            metadata = MetaData()
            await conn.run_sync(metadata.reflect)
            for table in sorted(metadata.sorted_tables, key=lambda t: t.name):
                rows = (await conn.execute(select(table))).all()
                digest.update(table.name.encode())
                for row in sorted(repr(tuple(r)) for r in rows):
                    digest.update(row.encode())
        return digest.hexdigest()


_keys = itertools.count()


def referral_body(nhs_number: str = CHILD["nhs_number"]) -> dict[str, Any]:
    return {
        "service_id": SERVICE,
        "child": {
            "given_name": CHILD["given_name"],
            "family_name": CHILD["family_name"],
            "date_of_birth": "2015-04-12",
            "nhs_number": nhs_number,
        },
        "primary_need": "SEMH",
        "reason": "Persistent anxiety affecting attendance.",
        "urgency": "routine",
        "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "Referral to CAMHS"},
    }


def valid_nhs_numbers() -> Iterator[str]:
    for n in itertools.count(400_000_000):
        digits = [int(d) for d in str(n)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            yield f"{n}{check}"


_nhs = valid_nhs_numbers()


async def build(service: str, database_url: str, kafka_bootstrap: str) -> FastAPI:
    module = __import__(f"{service}.bootstrap", fromlist=["build_app"])
    cli = __import__(f"{service}.entrypoints.cli", fromlist=["main"])
    settings_module = __import__(f"{service}.settings", fromlist=["x"])
    settings_class = getattr(settings_module, f"{service.capitalize()}Settings")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", database_url)
        await asyncio.to_thread(cli.main, ["migrate"])
    extra = {"webhooks_allow_private_targets": True} if service == "notifications" else {}
    settings = settings_class(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, run_workers=False, **NO_LIMITS, **extra
    )
    app: FastAPI = module.build_app(settings)
    for step in getattr(app.state.runtime, "startup", []):
        await step()
    return app


def directory_events() -> list[CloudEvent]:
    """The directory as the referrals service publishes it: the three organisations (not UNKNOWN), the service."""
    kinds = {SCHOOL: "school", CAMHS: "camhs", OTHER: "school"}
    events = [
        CloudEvent(type=ORGANISATION_UPSERTED, source="/matrix", subject=org,
                   data=OrganisationV1(organisation_id=org, version=1, name=org, kind=kind,
                                       area_id="la-northshire").model_dump(mode="json"))
        for org, kind in kinds.items()
    ]  # fmt: skip
    events.append(
        CloudEvent(type=SERVICE_UPSERTED, source="/matrix", subject=SERVICE,
                   data=ServiceV1(service_id=SERVICE, version=1, organisation_id=CAMHS, name="CAMHS core",
                                  needs=["SEMH"], urgencies=["routine"], clocks=["cypmh_4w"]).model_dump(mode="json"))
    )  # fmt: skip
    return events


async def seed_waitlists(app: FastAPI, referral_id: str) -> None:
    from waitlists.bootstrap import handle_referral_event, refresh_facts

    events = directory_events()
    now = datetime.now(UTC)
    events.append(
        CloudEvent(type=referral_event_type("submitted"), source="/send/referrals", subject=referral_id,
                   data=ReferralEventV1(referral_id=referral_id, version=1, status=ReferralStatus.SUBMITTED,
                                        child_ref="c" * 32, referrer_org_id=SCHOOL, service_id=SERVICE,
                                        receiving_org_id=CAMHS, urgency="routine", occurred_at=now,
                                        recorded_at=now).model_dump(mode="json"))
    )  # fmt: skip
    sessions = session_factory(app.state.runtime.engine)
    for event in events:
        async with sessions() as session, session.begin():
            await handle_referral_event(event, session)
            await refresh_facts(session)


async def register_endpoint(client: httpx.AsyncClient) -> str:
    created = await client.post(
        "/v1/endpoints",
        headers=Caller(CAMHS, RX).headers,
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["uk.send.referral.submitted.v1"]},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def seed_notifications(app: FastAPI, client: httpx.AsyncClient, referral_id: str) -> tuple[str, int]:
    from notifications.service_layer.fanout import fan_out

    link = "http://referrals.test/v1/referrals/{referral_id}"
    for directory_event in directory_events():
        async with app.state.unit_of_work() as uow:
            await fan_out(directory_event, uow, referral_link_template=link)
            await uow.commit()
    endpoint_id = await register_endpoint(client)
    now = datetime.now(UTC)
    event = CloudEvent(type=referral_event_type("submitted"), source="/send/referrals", subject=referral_id,
                       data=ReferralEventV1(referral_id=referral_id, version=1, status=ReferralStatus.SUBMITTED,
                                            child_ref="c" * 32, referrer_org_id=SCHOOL, service_id=SERVICE,
                                            receiving_org_id=CAMHS, urgency="routine", occurred_at=now,
                                            recorded_at=now).model_dump(mode="json"))  # fmt: skip
    async with app.state.unit_of_work() as uow:
        await fan_out(event, uow, referral_link_template=link)
        await uow.commit()
    deliveries = await client.get(f"/v1/endpoints/{endpoint_id}/deliveries", headers=Caller(CAMHS, RX).headers)
    assert deliveries.status_code == 200 and deliveries.json(), deliveries.text
    return endpoint_id, int(deliveries.json()[0]["id"])


@pytest.fixture(scope="module")
def matrix_results() -> Iterator[dict[str, Any]]:
    found: dict[str, Any] = {}
    yield found
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(json.dumps(found, indent=2, sort_keys=True))


@pytest.fixture
def matrix_databases(postgres_server: Any) -> dict[str, str]:
    return {name: postgres_server.new_database(f"matrix_{name[:5]}") for name in EXPECTED}


@pytest.fixture
async def system(matrix_databases: dict[str, str], kafka_bootstrap: str) -> AsyncIterator[System]:
    apps = {name: await build(name, url, kafka_bootstrap) for name, url in matrix_databases.items()}
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        for name, app in apps.items()
    }
    try:
        referral_id = await submit(clients["referrals"])
        await seed_waitlists(apps["waitlists"], referral_id)
        endpoint_id, delivery_id = await seed_notifications(
            apps["notifications"], clients["notifications"], referral_id
        )
        yield System(apps, clients, referral_id, endpoint_id, delivery_id)
    finally:
        for name, client in clients.items():
            await client.aclose()
            await apps[name].state.runtime.engine.dispose()


async def submit(client: httpx.AsyncClient, nhs_number: str = CHILD["nhs_number"]) -> str:
    headers = {**Caller(SCHOOL, R).headers, "idempotency-key": f"matrix-{next(_keys)}"}
    created = await client.post("/v1/referrals", json=referral_body(nhs_number), headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


# --- the request each route is called with -------------------------------------------------------------


@dataclass
class Call:
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    params: dict[str, str] | None = None


async def family_link(system: System) -> str:
    made = await system.clients["referrals"].post(
        f"/v1/referrals/{system.referral_id}/family-links",
        json={"email": "family@example.com"},
        headers=Caller(SCHOOL, R).headers,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


OFFER = "io-family-voice-peer-support"


async def signposted(system: System, referral_id: str, offer_id: str) -> None:
    """The referral signposted to the offer (as a clock alert or an accepted long wait would), once."""
    from sqlalchemy import text

    async with system.apps["referrals"].state.runtime.engine.begin() as conn:
        held = await conn.execute(
            text("SELECT 1 FROM referral_signposts WHERE referral_id = :r AND offer_id = :o"),
            {"r": referral_id, "o": offer_id},
        )
        if held.first() is None:
            await conn.execute(
                text(
                    "INSERT INTO referral_signposts (referral_id, offer_id, provider_org_id, trigger, signposted_at, "
                    "position) VALUES (:r, :o, 'org-family-voice', 'clock_breach_imminent', :at, 0)"
                ),
                {"r": referral_id, "o": offer_id, "at": datetime.now(UTC)},
            )


async def version_of(system: System, referral_id: str) -> int:
    shown = await system.clients["referrals"].get(f"/v1/referrals/{referral_id}", headers=Caller(SCHOOL, R).headers)
    return int(shown.json()["version"])


async def closed_referral(system: System) -> str:
    """A fresh referral (of another child), withdrawn by its referrer."""
    referral_id = await submit(system.clients["referrals"], next(_nhs))
    withdrawn = await system.clients["referrals"].post(
        f"/v1/referrals/{referral_id}/status",
        json={"status": "withdrawn"},
        headers={**Caller(SCHOOL, R).headers, "if-match": '"1"'},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    return referral_id


async def request_for(system: System, service: str, method: str, path: str, caller: Caller, allowed: bool) -> Call:
    """A request the caller would make. An allowed caller acting on a referral acts on a fresh one of its own,
    so that each call is judged on its own and not on what an earlier caller did."""
    rid = system.referral_id
    key = {"idempotency-key": f"matrix-{next(_keys)}"}
    if service == "referrals":
        if path == "/v1/referrals" and method == "POST":
            return Call(path, json=referral_body(next(_nhs)), headers=key)
        if path == "/v1/referrals/{referral_id}/status":
            target = await submit(system.clients["referrals"], next(_nhs)) if allowed else rid
            version = await version_of(system, target)
            body = (
                {"status": "withdrawn", "explanation": "Family moved away."}
                if caller.role is R
                else {"status": "acknowledged"}
            )
            return Call(f"/v1/referrals/{target}/status", json=body, headers={"if-match": f'"{version}"'})
        if path == "/v1/referrals/{referral_id}/consent" and method == "POST":
            # An allowed caller withdraws consent to a fresh referral of its own; the others try the shared one.
            target = await submit(system.clients["referrals"], next(_nhs)) if allowed else rid
            return Call(path.format(referral_id=target), json={"action": "withdraw", "given_by": "parent"}, headers=key)
        if path == "/v1/referrals/import":
            return Call(path, content=b"service_id\n", headers={**key, "content-type": "text/csv"})
        if path == "/v1/referrals/{referral_id}/erasure":
            # An allowed caller erases a fresh closed referral (an open one is refused, 409); the others the open one.
            return Call(path.format(referral_id=await closed_referral(system) if allowed else rid))
        if path == "/v1/subject-access":
            return Call(path, json={"nhs_number": CHILD["nhs_number"]})
        if path == "/v1/referrals/{referral_id}/family-links" and method == "POST":
            return Call(path.format(referral_id=rid), json={"email": "family@example.com", "expires_in_days": 7})
        if path == "/v1/referrals/{referral_id}/family-links/{link_id}":
            # An allowed caller revokes a fresh link; the others try the one every refused caller tries.
            link_id = await family_link(system) if allowed else system.family_link_id or await family_link(system)
            system.family_link_id = system.family_link_id or link_id
            return Call(path.format(referral_id=rid, link_id=link_id))
        if path == "/v1/referrals/{referral_id}/signposts/{offer_id}/take-up":
            # An allowed caller takes up an offer a fresh referral of its own was signposted to; the others try the
            # shared referral's.
            target = await submit(system.clients["referrals"], next(_nhs)) if allowed else rid
            await signposted(system, target, OFFER)
            return Call(path.format(referral_id=target, offer_id=OFFER))
        if path == "/v1/directory/interim-offers/{offer_id}":
            body = {
                "service_id": SERVICE,
                "provider_org_id": "org-family-voice",
                "name": "Parent peer support group",
                "description": "Meet other parents whose children are waiting.",
                "needs": ["SEMH"],
                "contact_phone": "01632 960 400",
            }
            return Call(path.format(offer_id=OFFER), json=body)
        if path == "/v1/directory/organisations/{organisation_id}":
            body = {"name": "Millbrook Primary Academy", "kind": "school", "area_id": "la-northshire"}
            return Call(path.format(organisation_id=OTHER), json=body)
        if path == "/v1/directory/services/{service_id}":
            body = {
                "organisation_id": CAMHS,
                "name": "CAMHS core",
                "needs": ["SEMH"],
                "urgencies": ["routine", "urgent"],
                "clocks": ["cypmh_4w"],
                "active": True,
            }
            return Call(path.format(service_id=SERVICE), json=body)
        return Call(path.format(referral_id=rid))
    if service == "waitlists":
        scope = {"scope": "service", "scope_id": SERVICE}
        if path == "/v1/exports/ehc-timeliness.csv":
            return Call(path, params={"area_id": "la-northshire", "year": "2026"})
        if path.startswith(("/v1/exports", "/v1/dashboard")) and not path.endswith("/scopes"):
            return Call(path, params=scope)
        return Call(path.format(referral_id=rid, service_id=SERVICE, **scope))
    # notifications
    endpoint = system.endpoint_id
    if method == "DELETE" and allowed:
        endpoint = await register_endpoint(system.clients["notifications"])
    if path == "/v1/endpoints" and method == "POST":
        return Call(path, json={"url": "http://127.0.0.1:9/other", "event_types": ["uk.send.referral.accepted.v1"]})
    if path == "/v1/contacts":
        return Call(path, json={"emails": []})
    if path == "/v1/email-preferences" and method == "PUT":
        return Call(path, json={"new_referrals": "digest_only", "breach_alerts": True})
    if path == "/v1/endpoints/{endpoint_id}" and method == "PUT":
        body = {"url": "http://127.0.0.1:9/hook", "event_types": ["uk.send.referral.submitted.v1"]}
        return Call(path.format(endpoint_id=endpoint), json=body)
    if path.endswith("/redeliver") and "{delivery_id}" not in path:
        return Call(path.format(endpoint_id=endpoint), json={"since": "2026-01-01T00:00:00Z"})
    return Call(path.format(endpoint_id=endpoint, delivery_id=system.delivery_id))


# --- the tests ----------------------------------------------------------------------------------------


async def test_every_route_has_an_expectation(system: System) -> None:
    for service, app in system.apps.items():
        table = route_table(app) - {("HEAD", p) for _, p in route_table(app)}
        listed = set(EXPECTED[service]) | PAGES.get(service, set()) | set(EXEMPT[service])
        missing = sorted(table - listed - OPERATIONS)
        stale = sorted(listed - table)
        assert not missing, f"{service}: routes with no authorisation expectation: {missing}"
        assert not stale, f"{service}: expectations for routes that do not exist: {stale}"


LEAKS = (CHILD["given_name"], CHILD["family_name"], CHILD["nhs_number"])


@pytest.mark.parametrize("service", list(EXPECTED))
async def test_each_route_answers_only_those_it_should(
    system: System, service: str, matrix_results: dict[str, Any]
) -> None:
    client = system.clients[service]
    wrong: list[str] = []
    calls = 0
    # DELETE last: it removes the endpoint the other routes act on.
    ordered = sorted(EXPECTED[service].items(), key=lambda item: item[0][0] == "DELETE")
    for (method, path), may in ordered:
        for caller in sorted(CALLERS, key=may):  # refused callers first, while the shared objects are untouched
            allowed = may(caller)
            call = await request_for(system, service, method, path, caller, allowed)
            before = None if allowed else await system.fingerprint(service)
            response = await client.request(
                method,
                call.path,
                json=call.json,
                content=call.content,
                params=call.params,
                headers={**(call.headers or {}), **caller.headers},
            )
            calls += 1
            status = response.status_code
            where = f"{method} {call.path} as {caller}: {status} {response.text[:200]}"
            if allowed:
                if not 200 <= status < 300 and not (path == "/v1/referrals/import" and status == 422):
                    wrong.append(f"refused an allowed caller: {where}")
            else:
                expected = {401} if caller.role is None else {403, 404}
                if status not in expected:
                    wrong.append(f"expected {sorted(expected)}: {where}")
                if status < 500 and response.headers.get("content-type") != "application/problem+json":
                    wrong.append(f"a refusal that is not problem+json: {where}")
                if before is not None and await system.fingerprint(service) != before:
                    wrong.append(f"a refused write changed the database: {where}")
            if (
                response.headers.get("x-content-type-options") != "nosniff"
                or "content-security-policy" not in response.headers
            ):
                wrong.append(f"no security headers: {where}")
            shown = response.text.replace(call.path, "")  # a problem's `instance` echoes the caller's own path
            if not reads_the_referral(caller) and any(leak in shown for leak in LEAKS):
                wrong.append(f"personal details shown to a stranger: {where}")
            stranger = caller.org not in (SCHOOL, CAMHS) and caller.role is not PLAT
            if stranger and system.referral_id in shown:
                wrong.append(f"the referral's id shown to a stranger: {where}")
    matrix_results[service] = {"routes": len(EXPECTED[service]), "callers": len(CALLERS), "calls": calls}
    assert not wrong, "\n".join(wrong)


def test_the_route_table_sees_every_kind_of_route() -> None:
    """Plain Starlette routes and mounts are in the table the first test checks, not only FastAPI routes."""
    from fastapi import APIRouter
    from starlette.responses import PlainTextResponse
    from starlette.routing import WebSocketRoute

    async def endpoint(*_: Any) -> PlainTextResponse:
        return PlainTextResponse("")

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    router = APIRouter(prefix="/v1")
    router.add_api_route("/api/{x}", endpoint, methods=["PUT"])
    app.include_router(router)
    app.add_route("/plain/{x}", endpoint, methods=["POST"])
    app.mount("/files", FastAPI())
    app.router.routes.append(WebSocketRoute("/socket", endpoint))
    assert route_table(app) == {
        ("PUT", "/v1/api/{x}"),
        ("POST", "/plain/{x}"),
        ("MOUNT", "/files"),
        ("WebSocketRoute", "/socket"),
    }


# --- pages and the session cookie ---------------------------------------------------------------------

OTHER_CHILD = {"given_name": "Otheria", "family_name": "Elsewhereson"}
_REFERRAL_LINK = re.compile(r"/referrals/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def page_outcome(path: str, caller: Caller, readers: Callable[[Caller], bool]) -> str:
    """What a referrals page gives a browser signed in as the caller (pages.py): no session, a sign-in redirect;
    a role other than referrer or receiver, or an organisation missing from the directory, a 403; the listing to
    the others; a referral to its readers, and to everyone else a page saying there is nothing here (404)."""
    if caller.role is None:
        return "sign-in"
    if caller.role not in (R, RX) or not known(caller):
        return "forbidden"
    if path == "/referrals/" or readers(caller):
        return "shown"
    return "not-found"


def reads_the_others_referral(c: Caller) -> bool:
    """The second referral: sent by the unrelated school's referrer to the same CAMHS service."""
    return (c.org, c.role) in {(OTHER, R), (CAMHS, RX)}


async def test_each_page_shows_only_what_the_caller_may_read(system: System, matrix_results: dict[str, Any]) -> None:
    client = system.clients["referrals"]
    body = referral_body(next(_nhs))
    body["child"].update(OTHER_CHILD)
    sent = await client.post(
        "/v1/referrals", json=body, headers={**Caller(OTHER, R).headers, "idempotency-key": f"matrix-{next(_keys)}"}
    )
    assert sent.status_code == 201, sent.text
    referrals = {system.referral_id: (reads_the_referral, LEAKS),
                 str(sent.json()["id"]): (reads_the_others_referral, tuple(OTHER_CHILD.values()))}  # fmt: skip
    targets = [("/referrals/", "/referrals/", None)]
    targets += [(f"/referrals/{rid}", "/referrals/{referral_id}", rid) for rid in referrals]
    assert {("GET", route) for _, route, _ in targets} == PAGES["referrals"]
    wrong: list[str] = []
    calls = 0
    for url, route, rid in targets:
        for caller in CALLERS:
            readers = referrals[rid][0] if rid else reads_the_referral
            outcome = page_outcome(route, caller, readers)
            response = await client.get(url, headers=caller.signed_in)
            calls += 1
            status = response.status_code
            text = response.text if rid is None else response.text.replace(url, "")  # a problem echoes its path
            where = f"GET {url} signed in as {caller}: {status} {response.text[:200]}"
            expected = {"sign-in": 303, "forbidden": 403, "not-found": 404, "shown": 200}[outcome]
            if status != expected:
                wrong.append(f"expected {expected} ({outcome}): {where}")
            if outcome == "sign-in" and not response.headers.get("location", "").startswith("/signin?next="):
                wrong.append(f"not sent to sign in: {where}")
            if (
                response.headers.get("x-content-type-options") != "nosniff"
                or "content-security-policy" not in response.headers
            ):
                wrong.append(f"no security headers: {where}")
            # Which referrals the page names, and whose personal details it shows.
            may_see = {r for r, (may, _) in referrals.items() if may(caller)} if outcome == "shown" else set()
            if rid is not None:
                may_see &= {rid}
            named = set(_REFERRAL_LINK.findall(text)) | {r for r in referrals if r in text}
            if named - may_see:
                wrong.append(f"names referrals the caller may not read {sorted(named - may_see)}: {where}")
            if route == "/referrals/" and outcome == "shown" and not may_see <= named:
                wrong.append(f"the listing leaves out referrals the caller sent or receives: {where}")
            for r, (_, details) in referrals.items():
                detail_allowed = rid == r and outcome == "shown"
                if not detail_allowed and any(d in text for d in details):
                    wrong.append(f"personal details of {r} shown: {where}")
                if detail_allowed and not all(d in text for d in details[:2]):
                    wrong.append(f"a reader does not see the child's name: {where}")
            if caller.role is not None:  # a bearer header alone does not sign a browser in
                bearer = await client.get(url, headers=caller.headers)
                calls += 1
                if bearer.status_code != 303:
                    wrong.append(f"a bearer header opened a page: GET {url} as {caller}: {bearer.status_code}")
    matrix_results["referrals pages"] = {"routes": len(PAGES["referrals"]), "callers": len(CALLERS), "calls": calls}
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("service", list(EXPECTED))
async def test_the_session_cookie_reads_only_what_the_bearer_token_reads(
    system: System, service: str, matrix_results: dict[str, Any]
) -> None:
    """A signed-in browser (the dashboard, the pages' links to JSON) reads the GET routes with its session cookie:
    the same rule as the bearer token, from every organisation in every role."""
    client = system.clients[service]
    wrong: list[str] = []
    calls = 0
    reads = {key: may for key, may in EXPECTED[service].items() if key[0] == "GET"}
    for (method, path), may in reads.items():
        for caller in CALLERS:
            if caller.role is None:
                continue  # no cookie: the first matrix's anonymous caller
            allowed = may(caller)
            call = await request_for(system, service, method, path, caller, allowed)
            response = await client.get(
                call.path, params=call.params, headers={**(call.headers or {}), **caller.signed_in}
            )
            calls += 1
            status = response.status_code
            where = f"GET {call.path} signed in as {caller}: {status} {response.text[:200]}"
            if allowed and not 200 <= status < 300:
                wrong.append(f"refused an allowed caller: {where}")
            if not allowed and status not in {403, 404}:
                wrong.append(f"expected [403, 404]: {where}")
            shown = response.text.replace(call.path, "")
            if not reads_the_referral(caller) and any(leak in shown for leak in LEAKS):
                wrong.append(f"personal details shown to a stranger: {where}")
            stranger = caller.org not in (SCHOOL, CAMHS) and caller.role is not PLAT
            if stranger and system.referral_id in shown:
                wrong.append(f"the referral's id shown to a stranger: {where}")
    matrix_results[f"{service} by session cookie"] = {"routes": len(reads), "callers": len(CALLERS) - 1, "calls": calls}
    assert not wrong, "\n".join(wrong)


async def test_the_dashboard_files_hold_no_data(system: System) -> None:
    """The dashboard's files are the same for every caller, signed in or not, and name no referral."""
    client = system.clients["waitlists"]
    seen = set()
    for caller in CALLERS:
        for path in ("/dashboard/", "/dashboard/app.js"):
            response = await client.get(path, headers=caller.signed_in)
            assert response.status_code == 200, f"GET {path} as {caller}: {response.status_code}"
            assert system.referral_id not in response.text and SERVICE not in response.text
            seen.add((path, response.content))
    assert len(seen) == 2, "the dashboard's files differ by caller"


async def test_family_pages_answer_the_token_not_the_caller(system: System) -> None:
    """Whoever calls (any bearer token, or none), a made-up token opens nothing and a form without its CSRF token
    changes nothing; the real token's page shows no child's name or NHS number, and always the page headers."""
    from sqlalchemy import text

    from referrals.entrypoints.routers.family import FamilyLimits
    from referrals.settings import ReferralsSettings

    client = system.clients["referrals"]
    # Rate limits are tested on their own (referrals' test_family_routes.py): here every caller gets through.
    no_limits = ReferralsSettings(family_view_per_ip_per_minute=0, family_view_per_link_per_minute=0)
    system.apps["referrals"].state.family_limits = FamilyLimits(no_limits)
    await family_link(system)
    async with system.apps["referrals"].state.runtime.engine.connect() as conn:
        token = (await conn.execute(text("SELECT token FROM family_link_emails WHERE token IS NOT NULL"))).scalar()
    assert token
    wrong: list[str] = []
    for caller in CALLERS:
        for made_up in ("A" * 43, token[:-2] + "zz"):
            before = await system.fingerprint("referrals")
            for method, path in sorted(k for k in EXEMPT["referrals"] if k[1].startswith("/family/")):
                response = await client.request(
                    method, path.format(token=made_up), headers=caller.headers, data={"csrf": "0" * 64}
                )
                if response.status_code != 404 or "This link does not work" not in response.text:
                    wrong.append(f"{method} {path} as {caller}: {response.status_code}")
                if response.headers.get("cache-control") != "no-store" or "x-robots-tag" not in response.headers:
                    wrong.append(f"no page headers: {method} {path} as {caller}")
            if await system.fingerprint("referrals") != before:
                wrong.append(f"a made-up token changed the database, as {caller}")
        before = await system.fingerprint("referrals")
        for path in ("/family/{token}/contact", "/family/{token}/withdraw"):
            response = await client.post(
                path.format(token=token), headers=caller.headers, data={"csrf": "0" * 64, "email": "x@example.com"}
            )
            if response.status_code != 403:
                wrong.append(f"POST {path} without its CSRF token as {caller}: {response.status_code}")
        if await system.fingerprint("referrals") != before:
            wrong.append(f"a form without its CSRF token changed the database, as {caller}")
    page = await client.get(f"/family/{token}")
    assert page.status_code == 200 and "CAMHS core" in page.text
    assert not any(leak in page.text for leak in LEAKS) and system.referral_id not in page.text
    assert not wrong, "\n".join(wrong)
