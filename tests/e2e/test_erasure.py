"""Erasure leaves every waitlists figure identical (issue #17): the three services as processes on PostgreSQL and
the real broker.

A school refers children to CAMHS with business times over the past months; CAMHS moves them (accepted, started,
completed; rejected; some withdrawn by the school; others left waiting), enough that the figures are real counts.
Once waitlists has projected every change, its figures are recorded as CAMHS sees them (its own, so in full) and
as the area's: the metrics, the dashboard trend and services, both CSV exports and the clocks of the referrals
about to be erased, all as of yesterday (every business time here is before today). Several closed referrals are
erased, by the school and by CAMHS. A later submission (today, so outside every figure as of yesterday) is the
signal: once waitlists has projected it, anything published before it has been handled. Every figure is then
the same, the projection holds the same rows, the referrals event store gained nothing from the erasures, and
the referrals database holds no name, date of birth or NHS number of an erased child.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select, text

from send_devkit.demo import nhs_number
from send_devkit.devstack import DevStack
from send_devkit.ports import free_port
from send_devkit.testing import PostgresServer
from send_devkit.tokens import mint_token
from send_shared.db import create_engine

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SERVICES = ("referrals", "waitlists", "notifications")
SCHOOL_ORG, CAMHS_ORG, AREA = "org-riverside-primary", "org-northshire-camhs", "la-northshire"
SCHOOL = {"authorization": f"Bearer {mint_token(SCHOOL_ORG, 'referrer')}"}
CAMHS = {"authorization": f"Bearer {mint_token(CAMHS_ORG, 'receiver')}"}
CAMHS_OPS = {"authorization": f"Bearer {mint_token(CAMHS_ORG, 'ops')}"}
LA_OPS = {"authorization": f"Bearer {mint_token('org-northshire-la', 'ops')}"}
SERVICE = "svc-camhs-core"
PROJECTION = ("referral_changes", "referrals", "services", "organisations", "waiting_spells", "clock_spells",
              "clock_stops", "referral_outcomes", "handoff_gaps")  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[DevStack]:
    urls = {service: postgres_server.new_database(f"e2e_{service}") for service in SERVICES}
    ports = {service: free_port() for service in SERVICES}
    env = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
    with DevStack(var_dir=tmp_path / "var", broker_port=free_port(), ports=ports, smtp_port=free_port(),
                  extra_env=env, database_urls=urls) as running:  # fmt: skip
        running.test_database_urls = urls  # type: ignore[attr-defined]
        yield running


def query(stack: DevStack, service: str, sql: str) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        engine = create_engine(stack.test_database_urls[service])  # type: ignore[attr-defined]
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(text(sql))]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def every_value(stack: DevStack, service: str) -> list[str]:
    """Every value of every row of every table of the service's database, as text (bytes decoded)."""

    async def run() -> list[str]:
        engine = create_engine(stack.test_database_urls[service])  # type: ignore[attr-defined]
        try:
            async with engine.connect() as conn:
                metadata = MetaData()
                await conn.run_sync(metadata.reflect)
                found = []
                for table in metadata.sorted_tables:
                    for row in await conn.execute(select(table)):
                        found += [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row]
                return found
        finally:
            await engine.dispose()

    return asyncio.run(run())


def wait_until(condition: Any, what: str, timeout: float) -> None:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.25)


def call(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request, again after a 429 (the rate limit) as its Retry-After says."""
    for _ in range(20):
        response = http.request(method, url, **kwargs)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))
    raise AssertionError(f"still rate-limited: {method} {url}")


def at(day: date, hour: int = 10) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


class Referrals:
    """Submissions and moves through the referrals API, remembering each referral's version and child."""

    def __init__(self, stack: DevStack, http: httpx.Client) -> None:
        self.base = stack.url("referrals")
        self.http = http
        self.versions: dict[str, int] = {}
        self.children: dict[str, dict[str, str]] = {}
        self.rng = random.Random(17)

    def submit(self, n: int, referred: date | None) -> str:
        """``referred`` None: now."""
        child = {
            "given_name": "Erasmina",
            "family_name": "Tombstoner" + "".join(chr(ord("a") + int(d)) for d in f"{n:03d}"),
            "date_of_birth": (date(2012, 1, 1) + timedelta(days=n)).isoformat(),
            "nhs_number": nhs_number(self.rng),
        }
        body = {
            "service_id": SERVICE,
            "child": child,
            "primary_need": "SEMH",
            "reason": f"Worried about attendance, case {n}.",
            "consent": {
                "given_by": "parent",
                "given_at": at(referred, 9) if referred else (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "scope": "Referral to CAMHS",
            },
            **({"referred_at": at(referred)} if referred else {}),
        }
        created = call(self.http, "POST", f"{self.base}/v1/referrals", json=body,
                       headers={**SCHOOL, "idempotency-key": f"erasure-{n}"})  # fmt: skip
        assert created.status_code == 201, created.text
        referral_id = str(created.json()["id"])
        self.versions[referral_id] = 1
        self.children[referral_id] = child
        return referral_id

    def move(self, referral_id: str, status: str, day: date, headers: dict[str, str] = CAMHS, **extra: Any) -> None:
        version = self.versions[referral_id]
        moved = call(self.http, "POST", f"{self.base}/v1/referrals/{referral_id}/status",
                     json={"status": status, "occurred_at": at(day, 11), **extra},
                     headers={**headers, "if-match": f'"{version}"'})  # fmt: skip
        assert moved.status_code == 200, moved.text
        self.versions[referral_id] = version + 1


def figures(stack: DevStack, http: httpx.Client, as_of: date, erased: list[str]) -> dict[str, Any]:
    """Every figure waitlists gives about CAMHS and its area as of ``as_of``: JSON bodies and CSV texts."""
    base = stack.url("waitlists")
    day = {"as_of": as_of.isoformat()}
    asks: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
        "metrics service (own)": (f"/v1/metrics/service/{SERVICE}", day, CAMHS),
        "metrics organisation (own)": (f"/v1/metrics/organisation/{CAMHS_ORG}", day, CAMHS),
        "metrics area (school's view)": (f"/v1/metrics/area/{AREA}", day, SCHOOL),
        "metrics service (school's view)": (f"/v1/metrics/service/{SERVICE}", day, SCHOOL),
        "trend (own)": ("/v1/dashboard/trend", {**day, "scope": "service", "scope_id": SERVICE}, CAMHS_OPS),
        "trend area (LA)": ("/v1/dashboard/trend", {**day, "scope": "area", "scope_id": AREA}, LA_OPS),
        "services (own)": ("/v1/dashboard/services", {**day, "scope": "organisation", "scope_id": CAMHS_ORG},
                           CAMHS_OPS),
        "rtt csv (own)": ("/v1/exports/rtt-distribution.csv", {**day, "scope": "service", "scope_id": SERVICE},
                          CAMHS),
        "rtt csv area (LA)": ("/v1/exports/rtt-distribution.csv", {**day, "scope": "area", "scope_id": AREA},
                              LA_OPS),
        "ehc csv (LA)": ("/v1/exports/ehc-timeliness.csv", {"area_id": AREA, "year": str(as_of.year)}, LA_OPS),
    }  # fmt: skip
    for referral_id in erased:
        asks[f"clocks {referral_id}"] = (f"/v1/referrals/{referral_id}/clocks", day, CAMHS)
    found: dict[str, Any] = {}
    for name, (path, params, headers) in asks.items():
        response = call(http, "GET", f"{base}{path}", params=params, headers=headers)
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text[:300]}"
        found[name] = response.text if path.endswith(".csv") else response.json()
    return found


def projection(stack: DevStack, leave_out: str) -> dict[str, list[str]]:
    """Every row of waitlists' projection tables, but those of ``leave_out`` (the signal referral)."""
    return {
        table: sorted(r for r in map(repr, query(stack, "waitlists", f"SELECT * FROM {table}")) if leave_out not in r)
        for table in PROJECTION
    }


def projected(stack: DevStack) -> set[tuple[str, int]]:
    return {(r, v) for r, v in query(stack, "waitlists", "SELECT referral_id, version FROM referral_changes")}


def test_erasure_leaves_every_waitlists_figure_identical(stack: DevStack) -> None:
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    with httpx.Client(timeout=15) as http:
        api = Referrals(stack, http)
        completed, rejected, withdrawn, waiting = [], [], [], []
        for n in range(8):  # accepted within a few weeks, started, completed: clock stops in several months
            referred = today - timedelta(days=150 - 12 * n)
            referral_id = api.submit(n, referred)
            api.move(referral_id, "accepted", referred + timedelta(days=5 + n))
            api.move(referral_id, "in_progress", referred + timedelta(days=12 + 2 * n))
            api.move(referral_id, "completed", referred + timedelta(days=40), outcome_code="support_completed")
            completed.append(referral_id)
        for n in range(8, 14):  # rejected, signposted elsewhere
            referred = today - timedelta(days=120 - 9 * (n - 8))
            referral_id = api.submit(n, referred)
            api.move(referral_id, "acknowledged", referred + timedelta(days=2))
            api.move(referral_id, "rejected", referred + timedelta(days=9), reason_code="threshold_not_met",
                     explanation="Needs are met at school.", signposted_service_id="svc-family-support")  # fmt: skip
            rejected.append(referral_id)
        for n in range(14, 20):  # withdrawn by the school
            referred = today - timedelta(days=100 - 10 * (n - 14))
            referral_id = api.submit(n, referred)
            api.move(referral_id, "withdrawn", referred + timedelta(days=6), headers=SCHOOL)
            withdrawn.append(referral_id)
        for n in range(20, 28):  # still waiting, some accepted
            referred = today - timedelta(days=90 - 10 * (n - 20))
            referral_id = api.submit(n, referred)
            if n % 2:
                api.move(referral_id, "accepted", referred + timedelta(days=3))
            waiting.append(referral_id)
        changes = {(r, v) for r, last in api.versions.items() for v in range(1, last + 1)}
        wait_until(lambda: changes <= projected(stack), "every change projected by waitlists", 90)

        erased = completed[:3] + rejected[:2] + withdrawn[:2]
        before = figures(stack, http, yesterday, erased)
        own = before["metrics service (own)"]
        assert own["suppressed"] is False and own["closed_in_period"] >= 5 and own["rejected_in_period"] >= 5
        assert sum(point["stopped"] or 0 for point in before["trend (own)"]) >= 5, "clock stops in the trend"
        assert all(before[f"clocks {r}"] for r in erased), "the erased referrals' clocks"
        projection_before = projection(stack, leave_out="no-such-referral")
        events_before = query(stack, "referrals", "SELECT count(*) FROM event_store")[0][0]

        for n, referral_id in enumerate(erased):
            headers = SCHOOL if n % 2 else CAMHS
            gone = call(http, "POST", f"{api.base}/v1/referrals/{referral_id}/erasure", headers=headers)
            assert gone.status_code == 200, gone.text
        open_one = call(http, "POST", f"{api.base}/v1/referrals/{waiting[0]}/erasure", headers=CAMHS)
        assert open_one.status_code == 409 and open_one.json()["rule"] == "referral_open"
        assert query(stack, "referrals", "SELECT count(*) FROM event_store")[0][0] == events_before, (
            "erasure published something"
        )

        signal = api.submit(99, None)  # now: outside every figure as of yesterday
        wait_until(lambda: (signal, 1) in projected(stack), "the later submission projected by waitlists", 60)

        after = figures(stack, http, yesterday, erased)
        for name in before:
            assert after[name] == before[name], f"{name} changed after erasure"
        assert projection(stack, leave_out=signal) == projection_before

        shown = call(http, "GET", f"{api.base}/v1/referrals/{erased[0]}", headers=CAMHS)
        assert shown.status_code == 200 and set(shown.json()["child"]) == {"erased_at", "erased_by_org_id"}

    held = "\n".join(every_value(stack, "referrals"))
    for referral_id in erased:
        child = api.children[referral_id]
        for secret in (child["family_name"], child["nhs_number"], child["date_of_birth"]):
            assert secret not in held, f"{secret} of erased referral {referral_id} is still in the referrals database"
    kept = api.children[waiting[0]]
    assert kept["family_name"] in held and kept["nhs_number"] in held, "the check would see a name that is held"
