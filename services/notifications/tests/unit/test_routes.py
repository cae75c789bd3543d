"""The HTTP layer over the in-memory unit of work, its dependencies swapped with ``dependency_overrides``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from notifications.entrypoints.dependencies import dispatcher_wake, settings, unit_of_work, url_policy
from notifications.entrypoints.errors import install_error_handlers
from notifications.entrypoints.routers import ROUTERS
from notifications.service_layer.endpoints import UrlPolicy
from notifications.settings import NotificationsSettings
from send_shared.auth import Principal, Role, current_principal, organisation_lookup
from send_shared.web.problems import install_problem_handlers

from .fakes import FakeUnitOfWork
from .test_services import CAMHS, OTHER, consume, referral_event

PROBLEM = "application/problem+json"


class Caller:
    def __init__(self) -> None:
        self.principal = Principal("duty@camhs", CAMHS, Role.RECEIVER)
        self.policy = UrlPolicy(require_https=False, allow_private=True)
        self.wakes = 0  # how often a route woke the dispatcher

    def wake(self) -> None:
        self.wakes += 1

    def act_as(self, organisation_id: str) -> None:
        self.principal = Principal(f"someone@{organisation_id}", organisation_id, Role.RECEIVER)


@pytest.fixture
def caller() -> Caller:
    return Caller()


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
async def http(uow: FakeUnitOfWork, caller: Caller) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)

    async def is_known(organisation_id: str) -> bool:
        return organisation_id in (CAMHS, OTHER)

    app.dependency_overrides[unit_of_work] = lambda: uow
    app.dependency_overrides[settings] = lambda: NotificationsSettings(event_source="/send/test")
    app.dependency_overrides[url_policy] = lambda: caller.policy
    app.dependency_overrides[current_principal] = lambda: caller.principal
    app.dependency_overrides[organisation_lookup] = lambda: is_known
    app.dependency_overrides[dispatcher_wake] = lambda: caller.wake
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def register(http: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["uk.send.referral.*"], **extra}
    created = await http.post("/v1/endpoints", json=body)
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


async def test_an_endpoint_is_registered_and_listed_without_its_secret(http: httpx.AsyncClient) -> None:
    created = await register(http, description="duty inbox")
    assert created["secret"].startswith("whsec_")
    assert (created["status"], created["description"], created["disabled_reason"]) == ("active", "duty inbox", None)
    listed = (await http.get("/v1/endpoints")).json()
    assert listed == [{k: v for k, v in created.items() if k != "secret"}]


async def test_every_route_answers_404_for_another_organisations_endpoint(
    http: httpx.AsyncClient, caller: Caller
) -> None:
    path = f"/v1/endpoints/{(await register(http))['id']}"
    caller.act_as(OTHER)
    body = {"url": "http://127.0.0.1:9/other", "event_types": ["*"]}
    for method, suffix, json in [
        ("GET", "", None), ("PUT", "", body), ("POST", "/pause", None), ("POST", "/resume", None),
        ("POST", "/rotate-secret", None), ("POST", "/test", None), ("DELETE", "", None), ("GET", "/deliveries", None),
        ("POST", "/deliveries/1/redeliver", None), ("POST", "/redeliver", {"since": "2020-01-01T00:00:00Z"}),
        ("POST", "/retry-now", None),
    ]:  # fmt: skip
        response = await http.request(method, f"{path}{suffix}", json=json)
        assert response.status_code == 404, (method, suffix, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["detail"] == "no such endpoint"


async def test_an_unsafe_url_is_a_validation_problem_on_the_url(http: httpx.AsyncClient, caller: Caller) -> None:
    caller.policy = UrlPolicy(require_https=True, allow_private=False)
    response = await http.post("/v1/endpoints", json={"url": "https://10.0.0.1/hook", "event_types": ["*"]})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["url"]


async def test_the_delivery_log_shows_each_delivery_with_its_webhook_id(
    http: httpx.AsyncClient, uow: FakeUnitOfWork
) -> None:
    endpoint = await register(http)
    event = referral_event("r1", 1, "submitted")
    await consume(uow, event)
    assert (await http.post(f"/v1/endpoints/{endpoint['id']}/test")).json() == {"queued": 1}
    log = (await http.get(f"/v1/endpoints/{endpoint['id']}/deliveries")).json()
    assert [(d["event_type"], d["status"], d["attempt_log"]) for d in log] == [
        ("uk.send.webhook.ping.v1", "pending", []),
        ("uk.send.referral.submitted.v1", "pending", []),
    ]
    assert log[1]["webhook_id"] == f"msg_{event.id}"
    assert uow.committed.messages[log[0]["event_id"]].body["source"] == "/send/test", "the ping's source is set"


async def test_contacts_are_replaced(http: httpx.AsyncClient, uow: FakeUnitOfWork) -> None:
    for emails in (["a@camhs.example"], ["duty@camhs.example", "it@camhs.example"]):
        assert (await http.put("/v1/contacts", json={"emails": emails})).json() == {"emails": emails}
    assert uow.committed.contacts == {CAMHS: ["duty@camhs.example", "it@camhs.example"]}


async def test_retry_now_says_how_many_it_made_due_and_wakes_the_dispatcher_only_then(
    http: httpx.AsyncClient, uow: FakeUnitOfWork, caller: Caller
) -> None:
    endpoint = await register(http)
    await consume(uow, referral_event("r1", 1, "submitted"))
    path = f"/v1/endpoints/{endpoint['id']}/retry-now"
    assert (await http.post(path)).json() == {"made_due": 0}, "a delivery not yet attempted is not waiting"
    assert caller.wakes == 0
    (delivery,) = uow.committed.deliveries.values()
    delivery.attempts, delivery.next_attempt_at = 2, datetime.now(UTC) + timedelta(hours=2)
    assert (await http.post(path)).json() == {"made_due": 1}
    assert caller.wakes == 1


async def test_email_preferences_read_back_and_refuse_unknown_choices(
    http: httpx.AsyncClient, uow: FakeUnitOfWork
) -> None:
    defaults = {"new_referrals": "urgent_at_once_others_in_digest", "breach_alerts": True}
    assert (await http.get("/v1/email-preferences")).json() == defaults
    chosen = {"new_referrals": "digest_only", "breach_alerts": False}
    assert (await http.put("/v1/email-preferences", json=chosen)).json() == chosen
    assert (await http.get("/v1/email-preferences")).json() == chosen
    refused = await http.put("/v1/email-preferences", json={**chosen, "new_referrals": "hourly"})
    assert (refused.status_code, refused.headers["content-type"]) == (422, PROBLEM)
    assert [e["field"] for e in refused.json()["errors"]] == ["new_referrals"]
    assert (await http.get("/v1/email-preferences")).json() == chosen
