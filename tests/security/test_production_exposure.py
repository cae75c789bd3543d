"""What a production-configured service serves (README, "What production exposes"): the contract
(`/openapi.json`), but no interactive docs pages and none of their assets unless `API_DOCS=true`.

Each service's app is built as its entry point builds it, with production settings, and asked over HTTP:
the oracle is the response, not the settings flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

SERVICES = ("referrals", "waitlists", "notifications")
# Settings production requires of a service beyond the shared ones (secrets of its own).
PRODUCTION_NEEDS: dict[str, dict[str, Any]] = {"referrals": {"child_ref_key": "r" * 32}}
DOCS_PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect", "/docs-assets/swagger-ui-bundle.js", "/docs-assets/")


def production_app(service: str, database: Path, **extra: Any) -> Any:
    build_app = __import__(f"{service}.bootstrap", fromlist=["build_app"]).build_app
    settings_module = __import__(f"{service}.settings", fromlist=["x"])
    settings_class = getattr(settings_module, f"{service.capitalize()}Settings")
    settings = settings_class(
        environment="production",
        jwt_secret="p" * 32,
        database_url=f"sqlite+aiosqlite:///{database}",
        kafka_bootstrap_servers="127.0.0.1:9",
        run_workers=False,
        **PRODUCTION_NEEDS.get(service, {}),
        **extra,
    )
    return build_app(settings)


async def statuses(app: Any, paths: tuple[str, ...]) -> dict[str, int]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service.test") as client:
        return {path: (await client.get(path)).status_code for path in paths}


@pytest.mark.parametrize("service", SERVICES)
async def test_a_production_app_serves_no_docs_pages_but_its_contract(service: str, tmp_path: Path) -> None:
    app = production_app(service, tmp_path / "db.sqlite")
    try:
        shown = await statuses(app, (*DOCS_PAGES, "/openapi.json"))
    finally:
        await app.state.runtime.engine.dispose()
    assert shown == {**dict.fromkeys(DOCS_PAGES, 404), "/openapi.json": 200}, shown


@pytest.mark.parametrize("service", SERVICES)
async def test_a_production_app_serves_the_docs_pages_when_asked(service: str, tmp_path: Path) -> None:
    """API_DOCS=true turns them on in production: the check above would see them if they were there."""
    app = production_app(service, tmp_path / "db.sqlite", api_docs=True)
    try:
        shown = await statuses(app, ("/docs", "/redoc", "/docs-assets/swagger-ui-bundle.js"))
    finally:
        await app.state.runtime.engine.dispose()
    assert set(shown.values()) == {200}, shown
