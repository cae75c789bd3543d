"""The operations dashboard in a real browser, against the whole system loaded with demo history."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from send_shared.auth import mint_token
from send_shared.broker import free_port
from send_shared.demo import load
from send_shared.devstack import DevStack

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    ports = {name: free_port() for name in ("referrals", "waitlists", "notifications")}
    with DevStack(
        var_dir=tmp_path_factory.mktemp("var"), broker_port=free_port(), ports=ports, smtp_port=free_port()
    ) as running:
        asyncio.run(load(running.url("referrals"), seed=11, count=120))
        yield running


def api_figures(stack: DevStack, path: str) -> dict[str, object]:
    token = mint_token("org-northshire-la", "ops")
    for _ in range(100):  # the projection catches up within moments of the last API call
        response = httpx.get(f"{stack.url('waitlists')}{path}", headers={"authorization": f"Bearer {token}"})
        if response.status_code == 200:
            return response.json()  # type: ignore[no-any-return]
        asyncio.run(asyncio.sleep(0.2))
    raise AssertionError(response.text)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")
def test_dashboard_shows_the_apis_figures_and_filters(stack: DevStack) -> None:
    from playwright.sync_api import sync_playwright

    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    token = mint_token("org-northshire-la", "ops")
    # Let the projection settle: the same figures twice in a row.
    previous, figures = None, api_figures(stack, f"/v1/metrics/area/la-northshire?as_of={yesterday}")
    while figures != previous:
        asyncio.run(asyncio.sleep(1))
        previous, figures = figures, api_figures(stack, f"/v1/metrics/area/la-northshire?as_of={yesterday}")
    url = f"{stack.url('waitlists')}/dashboard/?scope=area&scope_id=la-northshire&as_of={yesterday}#token={token}"
    ARTEFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-loaded]", timeout=20_000)
        waiting = figures["waiting"]  # type: ignore[index]
        withheld = set(figures["withheld"])  # type: ignore[arg-type]

        def text(value: object, path: str) -> str:
            return "withheld" if path in withheld else str(value)

        assert page.text_content('[data-figure="waiting"]') == text(waiting["waiting"], "waiting.waiting")  # type: ignore[index]
        assert page.text_content('[data-figure="median"]') == text(waiting["median_days"], "waiting.median_days")  # type: ignore[index]
        assert page.text_content('[data-figure="p90"]') == text(waiting["p90_days"], "waiting.p90_days")  # type: ignore[index]
        assert page.locator("#risk tbody tr").count() == 6
        # Every control has a label, and the page can be driven from the keyboard.
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input,select')].filter(e => !document.querySelector(`label[for='${e.id}']`)).length"
        )
        assert unlabelled == 0
        page.screenshot(path=str(ARTEFACTS / "dashboard-area.png"), full_page=True)

        page.select_option("#scope", "service")
        page.select_option("#scope-id", "svc-camhs-core")
        page.focus("button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_selector("body[data-loaded*='svc-camhs-core']", timeout=20_000)
        service = api_figures(stack, f"/v1/metrics/service/svc-camhs-core?as_of={yesterday}")
        withheld = set(service["withheld"])  # type: ignore[arg-type]
        assert page.text_content('[data-figure="waiting"]') == text(service["waiting"]["waiting"], "waiting.waiting")  # type: ignore[index]
        assert "svc-camhs-core" in page.url
        page.screenshot(path=str(ARTEFACTS / "dashboard-camhs.png"), full_page=True)
        browser.close()
    assert (ARTEFACTS / "dashboard-area.png").stat().st_size > 10_000
