"""An in-process referrals API on a freshly migrated real database (PostgreSQL and SQLite)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, func, select

from referrals.adapters.orm import outbox
from referrals.bootstrap import build_app
from referrals.entrypoints.cli import main as cli_main
from referrals.settings import ReferralsSettings
from send_devkit.tokens import mint_token

SCHOOL = "org-riverside-primary"
CAMHS = "org-northshire-camhs"
LA = "org-northshire-la"
_keys = itertools.count()


def bearer(org: str, role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(org, role)}"}


def referral_body(nhs_number: str = "9434765919", service_id: str = "svc-camhs-core", **extra: Any) -> dict[str, Any]:
    return {
        "service_id": service_id,
        "child": {
            "given_name": "Sam",
            "family_name": "Taylor",
            "date_of_birth": "2015-04-12",
            "nhs_number": nhs_number,
        },
        "primary_need": "SEMH",
        "reason": "Persistent anxiety affecting attendance.",
        "urgency": "routine",
        "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "Referral to CAMHS"},
        **extra,
    }


@pytest.fixture
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    # Through the service's own CLI, as deployments run it (in a thread: Alembic runs its own event loop).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", database_url)
        await asyncio.to_thread(cli_main, ["migrate"])
    settings = ReferralsSettings(database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, run_workers=False)
    app = build_app(settings)
    for step in app.state.runtime.startup:  # seeds the directory, as the lifespan does
        await step()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        http.app = app  # type: ignore[attr-defined]
        http.directory_events = await count(http, outbox.store)  # type: ignore[attr-defined]
        yield http
    await app.state.runtime.engine.dispose()


async def count(http: httpx.AsyncClient, table: Table) -> int:
    async with http.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def referral_events(http: httpx.AsyncClient) -> int:
    """Outbox rows written since the directory was seeded."""
    return await count(http, outbox.store) - http.directory_events  # type: ignore[attr-defined]


async def submit(http: httpx.AsyncClient, body: dict[str, Any] | None = None, key: str | None = None) -> httpx.Response:
    headers = {**bearer(SCHOOL, "referrer"), "idempotency-key": key or f"key-{next(_keys)}"}
    return await http.post("/v1/referrals", json=body or referral_body(), headers=headers)


async def move(
    http: httpx.AsyncClient, referral_id: str, version: int, org: str, role: str, **body: Any
) -> httpx.Response:
    headers = {**bearer(org, role), "if-match": f'"{version}"'}
    return await http.post(f"/v1/referrals/{referral_id}/status", json=body, headers=headers)
