"""The dashboard's "Demand and capacity" section (issue #18) in a real browser, against the whole system loaded
with demo history: weekly flows per service, the breach forecast with its what-if control, and the area's services
ranked by breaches avoided per extra start, checked against the API; keyboard-driven; axe-clean; screenshots in
test-artefacts/dashboard/."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from send_devkit.demo import load
from send_devkit.devstack import DevStack
from send_devkit.ports import free_port

from .test_dashboard import ARGS, ARTEFACTS, AXE, CHROMIUM, api_figures, needs_chromium, settled, sign_in

pytestmark = pytest.mark.e2e
SHOTS = ARTEFACTS / "dashboard"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    ports = {name: free_port() for name in ("referrals", "waitlists", "notifications")}
    with DevStack(
        var_dir=tmp_path_factory.mktemp("var"), broker_port=free_port(), ports=ports, smtp_port=free_port()
    ) as running:
        asyncio.run(load(running.url("referrals"), seed=11, count=120))
        yield running


def shown(row: dict[str, object], path: str, value: object) -> str:
    """As the page writes a number: JavaScript's, so 2.0 is "2"."""
    if path in row["withheld"] or value is None:  # type: ignore[operator]
        return "withheld"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


@needs_chromium
def test_demand_and_capacity_section(stack: DevStack) -> None:
    from playwright.sync_api import sync_playwright

    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    query = f"scope=area&scope_id=la-northshire&as_of={day}"
    settled(stack, f"/v1/metrics/area/la-northshire?as_of={day}")
    weekly = settled(stack, f"/v1/capacity/area/la-northshire/weekly?as_of={day}")
    ranking = api_figures(stack, f"/v1/capacity/area/la-northshire/forecast?as_of={day}")
    what_if = api_figures(stack, f"/v1/capacity/area/la-northshire/forecast?as_of={day}&extra_starts=3")
    services = ranking["services"]
    assert isinstance(services, list) and services
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = stack.url("waitlists")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=True)
        page = context.new_page()
        sign_in(page, base, f"/dashboard/?{query}")
        page.wait_for_selector("body[data-loaded]", timeout=30_000)
        section = page.locator("#capacity")
        assert section.locator("h2").text_content() == "Demand and capacity"

        # The ranking: the API's order and numbers, names not ids.
        rows = page.locator("#ranking tbody tr")
        assert rows.count() == len(services)
        for i, r in enumerate(services):
            row = rows.nth(i)
            assert row.get_attribute("data-service") == r["scope_id"]
            assert row.locator("th").text_content() == r["name"]
            assert row.locator('[data-figure="rank-breaches-12"]').text_content() == shown(
                r, "breaches.12", r["breaches"]["12"]
            )
            assert row.locator('[data-figure="rank-per-start"]').text_content() == shown(
                r, "avoided_per_extra_start", r["avoided_per_extra_start"]
            )

        # Weekly demand and throughput: a chart with a text alternative, and the numbers behind it.
        demand = page.locator("#chart-demand")
        if demand.locator(".empty").count() == 0:
            assert demand.locator("svg[role=img] > title").count() == 1
            demand.locator("summary").click()
            weeks = weekly["weeks"]
            assert isinstance(weeks, list)
            table = demand.locator("tbody tr")
            assert table.count() == len(weeks)
            last = weeks[-1]
            assert table.nth(len(weeks) - 1).locator("td").all_text_contents()[:2] == [
                shown(last, "demand", last["demand"]),
                shown(last, "throughput", last["throughput"]),
            ]
        # One service's weeks, chosen from the keyboard.
        page.focus("#demand-service")
        page.select_option("#demand-service", services[0]["scope_id"])
        assert services[0]["name"] in (page.text_content("#chart-demand") or "")

        # The forecast with its what-if control, driven from the keyboard: 3 more starts a week.
        total = what_if["total"]
        page.fill("#extra-starts", "3")
        page.focus("#extra-starts")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#forecast-summary').textContent.includes('3 more starts')")
        summary = page.text_content("#forecast-summary") or ""
        avoided = shown(total, "avoided.12", total["avoided"]["12"])
        assert (f"{avoided} breach" if avoided != "withheld" else "avoided in the next 12 weeks is withheld") in summary
        forecast = page.locator("#chart-forecast")
        if forecast.locator(".empty").count() == 0:
            assert "3 more starts a week" in (forecast.locator("svg > title").text_content() or "")
        forecast.locator("summary").click()
        assert forecast.locator("tbody tr").first.locator("td").all_text_contents() == [
            shown(total, "breaches.4", total["breaches"]["4"]),
            shown(total, "breaches_with_extra.4", total["breaches_with_extra"]["4"]),
            shown(total, "avoided.4", total["avoided"]["4"]),
        ]
        # The CSVs for the selection are offered.
        hrefs = page.locator("#downloads a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert f"../v1/exports/breach-forecast.csv?{query}" in hrefs
        assert f"../v1/exports/capacity-weekly.csv?{query}" in hrefs

        section.screenshot(path=str(SHOTS / "capacity-section.png"))
        page.screenshot(path=str(SHOTS / "capacity-page.png"), full_page=True)
        if not AXE.exists():
            pytest.fail("axe-core is missing: run `make node-tools`")
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            "async () => (await axe.run('#capacity')).violations.map(v => [v.id, v.nodes.map(n => n.target)])"
        )
        assert violations == [], violations
        browser.close()
    assert (SHOTS / "capacity-section.png").stat().st_size > 10_000
