"""Issue #13, API side: hostile input is a 4xx problem+json naming the field, never a 500, never half-applied."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from send_devkit.webhook_receiver import Receiver

from .conftest import CAMHS, bearer

PROBLEM = "application/problem+json"
# The rule: an endpoint may subscribe only to types it can receive: referral status events and waitlist alerts.
TYPO_OR_UNKNOWN = [
    "uk.send.referral.acepted.v1",  # typo
    "uk.send.referral.accepted.v2",  # no such version
    "uk.send.referal.*",  # pattern that matches nothing
    "uk.send.directory.*",  # exists, but never sent to an endpoint
    "uk.send.directory.organisation.upserted.v1",
    "uk.send.webhook.*",
]


def problem(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


async def new_endpoint(api: httpx.AsyncClient, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    body = {"url": f"{receiver.base}/hook", "event_types": ["uk.send.referral.*"], **extra}
    response = await api.post("/v1/endpoints", json=body, headers=bearer(CAMHS))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.mark.parametrize("event_type", TYPO_OR_UNKNOWN)
async def test_unknown_event_types_are_refused(api: httpx.AsyncClient, receiver: Receiver, event_type: str) -> None:
    body = {"url": f"{receiver.base}/hook", "event_types": ["uk.send.referral.accepted.v1", event_type]}
    refused = problem(await api.post("/v1/endpoints", json=body, headers=bearer(CAMHS)))
    assert fields(refused) == {"event_types.1"}
    assert (await api.get("/v1/endpoints", headers=bearer(CAMHS))).json() == []


@pytest.mark.parametrize(
    "event_types",
    [["*"], ["uk.send.referral.*"], ["uk.send.waitlist.*"], ["uk.send.referral.entered_in_error.v1"],
     ["uk.send.waitlist.clock_breach_imminent.v1", "uk.send.waitlist.clock_breached.v1"]],
)  # fmt: skip
async def test_known_types_and_patterns_that_match_one_are_accepted(
    api: httpx.AsyncClient, receiver: Receiver, event_types: list[str]
) -> None:
    await new_endpoint(api, receiver, event_types=event_types)


async def test_a_changed_subscription_is_checked_too_and_nothing_is_half_applied(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await new_endpoint(api, receiver)
    path = f"/v1/endpoints/{endpoint['id']}"
    change = {"url": f"{receiver.base}/other", "event_types": ["uk.send.referral.acepted.v1"], "description": "x"}
    problem(await api.put(path, json=change, headers=bearer(CAMHS)))
    change = {"url": "https://[2002:7f00:1::]/hook", "event_types": ["*"], "description": "changed"}
    assert fields(problem(await api.put(path, json=change, headers=bearer(CAMHS)))) == {"url"}
    after = (await api.get(path, headers=bearer(CAMHS))).json()
    assert (after["url"], after["event_types"], after["description"]) == (
        endpoint["url"], endpoint["event_types"], endpoint["description"],
    )  # fmt: skip


@pytest.mark.parametrize(
    "url",
    ["https://[2002:7f00:1::]/", "https://[2002:a9fe:a9fe::]/latest", "https://[64:ff9b::7f00:1]/",
     "https://[64:ff9b:1::a00:1]/", "https://[::ffff:7f00:1]/", "https://[::7f00:1]/",
     "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"],
)  # fmt: skip
async def test_transition_addresses_are_refused_at_registration(api: httpx.AsyncClient, url: str) -> None:
    # The app under test allows private targets (development mode): transition addresses are refused anyway.
    refused = problem(await api.post("/v1/endpoints", json={"url": url, "event_types": ["*"]}, headers=bearer(CAMHS)))
    assert fields(refused) == {"url"}


async def test_webhook_urls_are_at_most_2000_characters(api: httpx.AsyncClient, receiver: Receiver) -> None:
    base = f"{receiver.base}/"
    for url in (base + "a" * 10_000, base + "a" * (2001 - len(base)), base + "é" * 400):  # é is 6 once encoded
        refused = problem(
            await api.post("/v1/endpoints", json={"url": url, "event_types": ["*"]}, headers=bearer(CAMHS))
        )
        assert fields(refused) == {"url"}, url[:60]
    await new_endpoint(api, receiver, url=base + "a" * (2000 - len(base)))


@pytest.mark.parametrize(
    "since",
    ["2024-01-01T00:00:00", "2024-01-01", "1999-12-31T23:59:59Z", "0001-01-01T00:00:00+23:59",
     "9999-12-31T23:59:59-23:59", "2100-01-01T00:00:00Z", "not a date", 10**30],
)  # fmt: skip
async def test_redeliver_since_needs_a_zoned_time_from_2000_to_now(
    api: httpx.AsyncClient, receiver: Receiver, since: Any
) -> None:
    endpoint = await new_endpoint(api, receiver)
    refused = problem(
        await api.post(f"/v1/endpoints/{endpoint['id']}/redeliver", json={"since": since}, headers=bearer(CAMHS))
    )
    assert fields(refused) == {"since"}


async def test_path_and_query_integers_are_bounded(api: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint = await new_endpoint(api, receiver)
    path = f"/v1/endpoints/{endpoint['id']}"
    for delivery_id in ("9" * 20, str(2**63), "-1", "0", "1e3"):
        response = await api.post(f"{path}/deliveries/{delivery_id}/redeliver", headers=bearer(CAMHS))
        assert response.status_code in (404, 422), (delivery_id, response.text)
        problem(response, response.status_code)
    assert (await api.post(f"{path}/deliveries/{2**63 - 1}/redeliver", headers=bearer(CAMHS))).status_code == 404
    for before in ("9" * 20, str(2**63)):
        response = await api.get(f"{path}/deliveries", params={"before": before}, headers=bearer(CAMHS))
        assert fields(problem(response)) == {"before"}
    assert (await api.get(f"{path}/deliveries", params={"before": 2**63 - 1}, headers=bearer(CAMHS))).json() == []


@pytest.mark.parametrize("endpoint_id", ["%00", "ep_%00abc", "ep_%C3%A9", "a" * 41, "..%2F..", "ep_x%20y"])
async def test_hostile_endpoint_ids_are_refused_or_not_found(api: httpx.AsyncClient, endpoint_id: str) -> None:
    for method, suffix in (("GET", ""), ("POST", "/pause"), ("GET", "/deliveries"), ("DELETE", "")):
        response = await api.request(method, f"/v1/endpoints/{endpoint_id}{suffix}", headers=bearer(CAMHS))
        assert response.status_code in (404, 422), (method, suffix, response.text)
        problem(response, response.status_code)


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"description": "a\x00b"}, "description"), ({"description": "x" * 501}, "description"),
     ({"service_ids": ["svc\x00"]}, "service_ids.0"), ({"service_ids": ["s" * 65]}, "service_ids.0"),
     ({"urgencies": ["routine"] * 4}, "urgencies")],
)  # fmt: skip
async def test_hostile_endpoint_fields_are_refused(
    api: httpx.AsyncClient, receiver: Receiver, extra: dict[str, Any], field: str
) -> None:
    body = {"url": f"{receiver.base}/hook", "event_types": ["*"], **extra}
    assert fields(problem(await api.post("/v1/endpoints", json=body, headers=bearer(CAMHS)))) == {field}
    assert (await api.get("/v1/endpoints", headers=bearer(CAMHS))).json() == []


@pytest.mark.parametrize(
    "email", ["a\x00b@example.org", "josé@example.org", "a@exämple.org", "x" * 300 + "@example.org", "a@localhost"]
)
async def test_hostile_contact_emails_are_refused(api: httpx.AsyncClient, email: str) -> None:
    refused = problem(await api.put("/v1/contacts", json={"emails": [email]}, headers=bearer(CAMHS)))
    assert fields(refused) == {"emails.0"}
