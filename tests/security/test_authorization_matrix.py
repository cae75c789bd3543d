"""Who may do what, from every app's route table.

Every route of the three services is called by four organisations (the referring school, the receiving
CAMHS, an unrelated school, and one missing from the directory) in every role, and without a token.
The expectation for each route is written here from the rules (brief §6, issue #13), not from the code:
a caller allowed to act gets a 2xx; anyone else gets 401, 403 or 404, the database is unchanged
byte for byte afterwards, and no response to a stranger carries the child's details or the referral id.
Every answer carries the security headers.
A route that is added without an expectation fails the first test.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
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

from send_devkit.tokens import mint_token
from send_shared.auth import Role
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
        ("POST", "/v1/referrals/import"): roles(R, RX),
        ("GET", "/v1/directory/organisations"): lambda c: c.role is not None,
        ("GET", "/v1/directory/services"): lambda c: c.role is not None,
        ("PUT", "/v1/directory/organisations/{organisation_id}"): lambda c: c.role is PLAT,
        ("PUT", "/v1/directory/services/{service_id}"): lambda c: c.role is PLAT or (c.org, c.role) == (CAMHS, ADM),
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
# Open to everyone by design: liveness, readiness and Prometheus (see README, "What production exposes"),
# the API docs pages (they hold no data: every call from them needs a token) and browser sign-in.
OPERATIONS = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
              ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
              ("GET", "/signin"), ("GET", "/signin/callback"), ("POST", "/signin/development"), ("POST", "/signout"),
              # pages read by a signed-in browser only (its session cookie, never a bearer header): their
              # authorisation is the JSON API's use case, tested in referrals' tests/integration/test_pages.py
              ("GET", "/referrals/"), ("GET", "/referrals/{referral_id}")}  # fmt: skip


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
        for route in routes:
            included = getattr(route, "include_context", None)
            if included is not None:
                yield from walk(route.original_router.routes, prefix + included.prefix)
            elif isinstance(route, APIRoute):
                for method in route.methods:
                    yield method, prefix + route.path

    return set(walk(list(app.routes)))


# --- the system under test --------------------------------------------------------------------------


@dataclass
class System:
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    referral_id: str
    endpoint_id: str
    delivery_id: int

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


async def version_of(system: System, referral_id: str) -> int:
    shown = await system.clients["referrals"].get(f"/v1/referrals/{referral_id}", headers=Caller(SCHOOL, R).headers)
    return int(shown.json()["version"])


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
        if path == "/v1/referrals/import":
            return Call(path, content=b"service_id\n", headers={**key, "content-type": "text/csv"})
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
        return Call(path.format(referral_id=rid, **scope))
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
        missing = sorted(table - set(EXPECTED[service]) - OPERATIONS)
        stale = sorted(set(EXPECTED[service]) - table)
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
