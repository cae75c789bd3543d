"""Hostile input at the API's edge (issue #13): every refusal is a problem+json naming the field and the
rule, never a 500 or a dropped connection; every response carries the security headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from importlib.resources import files
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import ReferralEventV1, ReferralStatus, referral_event_type
from waitlists.adapters.orm import referral_changes

from .conftest import as_org, directory_events, feed, ops, referral_events

TODAY = datetime.now(UTC).date()
# Every route that takes a reporting date, with the rest of a valid request.
DATED_ROUTES = [
    ("/v1/metrics/service/svc-camhs", {}),
    ("/v1/dashboard/trend", {"scope": "service", "scope_id": "svc-camhs"}),
    ("/v1/dashboard/services", {"scope": "service", "scope_id": "svc-camhs"}),
    ("/v1/exports/rtt-distribution.csv", {"scope": "service", "scope_id": "svc-camhs"}),
    ("/v1/referrals/r1/clocks", {}),
]
BAD_DATES = {
    "0001-01-01": "date_range",
    "1999-12-31": "date_range",
    "9999-12-31": "date_range",
    (TODAY + timedelta(days=400)).isoformat(): "date_range",
    "2026-01-05T00:00:00": "date_format",  # a naive datetime is no date
    "2026-01-05T00:00:00+00:00": "date_format",
    "1767571200": "date_format",  # seconds since 1970
    "2026-1-5": "date_format",
    "10000-01-01": "date_format",
}
HOSTILE_IDS = {
    "\u00fcnic\u00f6de": "string_pattern_mismatch",
    "\u2603": "string_pattern_mismatch",
    "nul\x00byte": "string_pattern_mismatch",
    "line\r\nbreak": "string_pattern_mismatch",
    'quote"semi;colon': "string_pattern_mismatch",
    "UPPER-case": "string_pattern_mismatch",
    "-leading-hyphen": "string_pattern_mismatch",
    "x" * 65: "string_too_long",
    "x" * 10_000: "string_too_long",
}


def assert_problem(response: httpx.Response, status: int, field: str, rules: set[str]) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    found = {(e["field"], e["rule"]) for e in body.get("errors", [])}
    assert found & {(field, rule) for rule in rules}, body


@pytest.fixture
async def loaded(engine: AsyncEngine) -> None:
    await feed(engine, *directory_events())
    await feed(engine, *referral_events("r1", "c1", "svc-camhs", ("submitted", "2026-01-05")))


@pytest.mark.parametrize(("path", "params"), DATED_ROUTES)
async def test_dates_are_bounded_at_the_edge(
    loaded: None, api: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    headers = as_org("org-camhs") if "clocks" in path else ops()
    for value, rule in BAD_DATES.items():
        response = await api.get(path, params={**params, "as_of": value}, headers=headers)
        assert_problem(response, 422, "as_of", {rule})
    ok = await api.get(path, params={**params, "as_of": "2026-03-02"}, headers=headers)
    assert ok.status_code == 200, ok.text


async def test_period_start_is_bounded_too(loaded: None, api: httpx.AsyncClient) -> None:
    path = "/v1/metrics/service/svc-camhs"
    for value in ("0001-01-01", "1999-12-31", "2026-01-05T00:00"):
        response = await api.get(path, params={"as_of": "2026-03-02", "period_start": value}, headers=ops())
        assert_problem(response, 422, "period_start", {"date_range", "date_format"})
    after = await api.get(path, params={"as_of": "2026-03-02", "period_start": "2026-03-03"}, headers=ops())
    assert_problem(after, 422, "period_start", {"before_as_of"})
    assert (await api.get(path, params={"as_of": "2000-01-01"}, headers=ops())).status_code == 200


async def test_ids_are_checked_before_they_reach_a_query_or_a_header(loaded: None, api: httpx.AsyncClient) -> None:
    for value, rule in HOSTILE_IDS.items():
        encoded = quote(value, safe="")
        for kind in ("service", "organisation", "area"):
            response = await api.get(f"/v1/metrics/{kind}/{encoded}", headers=ops())
            assert_problem(response, 422, "scope_id", {rule})
        for path in ("/v1/exports/rtt-distribution.csv", "/v1/dashboard/trend", "/v1/dashboard/services"):
            response = await api.get(path, params={"scope": "area", "scope_id": value}, headers=ops())
            assert_problem(response, 422, "scope_id", {rule})
        response = await api.get(
            "/v1/exports/ehc-timeliness.csv", params={"area_id": value, "year": "2026"}, headers=ops()
        )
        assert_problem(response, 422, "area_id", {rule})
        referral = await api.get(f"/v1/referrals/{encoded}/clocks", headers=as_org("org-camhs"))
        assert_problem(referral, 422, "referral_id", {rule})
    # A UUID, the referrals service's own form of id, is a well-formed referral id (unknown here: 404).
    unknown = await api.get("/v1/referrals/0b8f4a52-52d6-4d2e-9a55-3c1f0e4c9b21/clocks", headers=as_org("org-camhs"))
    assert unknown.status_code == 404


async def test_other_hostile_query_values_are_problems(loaded: None, api: httpx.AsyncClient) -> None:
    huge = str(10**40)
    cases = [
        ("/v1/dashboard/trend", {"scope": "service", "scope_id": "svc-camhs", "months": huge}, "months"),
        ("/v1/dashboard/trend", {"scope": "service", "scope_id": "svc-camhs", "months": "-" + huge}, "months"),
        ("/v1/exports/ehc-timeliness.csv", {"area_id": "la-test", "year": huge}, "year"),
        ("/v1/exports/ehc-timeliness.csv", {"area_id": "la-test", "year": "1e400"}, "year"),
        ("/v1/dashboard/services", {"scope": "galaxy", "scope_id": "x"}, "scope"),
        ("/v1/dashboard/services", {"scope": "area\x00", "scope_id": "x"}, "scope"),
        ("/v1/exports/rtt-distribution.csv", {"scope": "\u00e4rea", "scope_id": "x"}, "scope"),
    ]
    for path, params, field in cases:
        response = await api.get(path, params=params, headers=ops())
        assert response.status_code == 422, (path, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in {e["field"] for e in response.json()["errors"]}
    assert (await api.get("/v1/metrics/galaxy/x", headers=ops())).status_code == 422


async def test_csv_file_names_are_safe_header_values(loaded: None, api: httpx.AsyncClient) -> None:
    response = await api.get(
        "/v1/exports/rtt-distribution.csv",
        params={"scope": "service", "scope_id": "svc-camhs", "as_of": "2026-03-02"},
        headers=ops(),
    )
    assert response.status_code == 200
    value = response.headers["content-disposition"]
    value.encode("ascii")
    assert value.startswith('attachment; filename="rtt-distribution-svc-camhs-2026-03-02.csv"')
    extended = re.search(r"filename\*=UTF-8''([^;\s]+)", value)
    assert extended is not None and unquote(extended.group(1)) == "rtt-distribution-svc-camhs-2026-03-02.csv"


SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def directives(policy: str) -> dict[str, str]:
    found = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            found[name] = value.strip()
    return found


async def test_the_dashboard_sends_a_content_security_policy_and_the_security_headers(api: httpx.AsyncClient) -> None:
    for path in ("/dashboard/", "/dashboard/app.js", "/dashboard/style.css", "/dashboard/missing.js"):
        response = await api.get(path)
        for name, value in SECURITY.items():
            assert response.headers.get(name) == value, (path, name)
        policy = directives(response.headers["content-security-policy"])
        assert policy["default-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        assert policy["object-src"] == "'none'"
        assert policy["base-uri"] == "'none'"
        for directive in ("script-src", "style-src"):  # nothing inline may run or apply
            assert "'unsafe-inline'" not in policy.get(directive, "")
            assert "'unsafe-eval'" not in policy.get(directive, "")
    assert (await api.get("/dashboard/")).status_code == 200


def test_the_dashboard_needs_nothing_inline() -> None:
    """What a 'self'-only policy would block: inline scripts, style elements or attributes, event handler
    attributes, and scripts that write style attributes."""
    folder = files("waitlists").joinpath("dashboard")
    html = folder.joinpath("index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, re.I), "inline <script>"
    assert not re.search(r"<style\b", html, re.I), "inline <style>"
    assert not re.search(r"\sstyle\s*=", html, re.I), "style attribute"
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "event handler attribute"
    assert not re.search(r"javascript:", html, re.I)
    script = folder.joinpath("app.js").read_text(encoding="utf-8")
    assert not re.search(r"style\s*=\s*[\"'$`{]", script), "a style attribute written from script"
    assert not re.search(r"setAttribute\(\s*[\"']style[\"']", script)
    assert not re.search(r"\beval\(|new Function\(", script)


async def test_api_responses_carry_nosniff_and_a_deny_all_policy(loaded: None, api: httpx.AsyncClient) -> None:
    responses = [
        await api.get("/v1/metrics/service/svc-camhs", params={"as_of": "2026-03-02"}, headers=ops()),
        await api.get("/v1/metrics/service/svc-camhs"),  # 401
        await api.get("/v1/metrics/service/svc-nope", headers=ops()),  # 404
        await api.get("/v1/metrics/service/svc-camhs", params={"as_of": "0001-01-01"}, headers=ops()),  # 422
        await api.get("/v1/exports/rtt-distribution.csv", params={"scope": "service", "scope_id": "svc-camhs"},
                      headers=ops()),
        await api.get("/no-such-route"),
        await api.get("/metrics"),
    ]  # fmt: skip
    for response in responses:
        for name, value in SECURITY.items():
            assert response.headers.get(name) == value, (response.request.url, name)
        policy = directives(response.headers["content-security-policy"])
        assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"


DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)] + [k for k in value if isinstance(k, str)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


async def test_every_timestamp_carries_its_offset(engine: AsyncEngine, api: httpx.AsyncClient) -> None:
    """On SQLite as on PostgreSQL: a timestamp stored with an offset comes back as the same instant with
    a zone, and no timestamp the API returns lacks one."""
    await feed(engine, *directory_events())
    at = datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=5)))
    data = ReferralEventV1(
        referral_id="r1", version=1, status=ReferralStatus.SUBMITTED, child_ref="c1", referrer_org_id="org-school",
        service_id="svc-camhs", receiving_org_id="org-camhs", occurred_at=at, recorded_at=at,
    )  # fmt: skip
    await feed(engine, CloudEvent(type=referral_event_type("submitted"), source="/t", subject="r1",
                                  data=data.model_dump(mode="json")))  # fmt: skip
    async with engine.connect() as conn:
        stored = (await conn.execute(select(referral_changes.c.occurred_at))).scalar_one()
    assert stored.tzinfo is not None and stored.utcoffset() is not None
    assert stored == datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
    bodies = [
        (await api.get(path, params=params, headers=headers)).json()
        for path, params, headers in [
            ("/v1/metrics/service/svc-camhs", {"as_of": "2026-03-02"}, ops()),
            ("/v1/metrics/area/la-test", {"as_of": "2026-03-02"}, ops()),
            ("/v1/referrals/r1/clocks", {"as_of": "2026-01-30"}, as_org("org-camhs")),
            ("/v1/dashboard/trend", {"scope": "area", "scope_id": "la-test", "as_of": "2026-03-02"}, ops()),
            ("/v1/dashboard/services", {"scope": "area", "scope_id": "la-test", "as_of": "2026-03-02"}, ops()),
            ("/v1/dashboard/scopes", {}, ops()),
        ]
    ]
    found = [s for body in bodies for s in strings(body) if DATETIME.match(s)]
    assert all(OFFSET.search(s) for s in found), [s for s in found if not OFFSET.search(s)]
