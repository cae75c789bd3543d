"""The operations dashboard in a real browser, against the whole system loaded with demo history."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from send_devkit.demo import load, nhs_number
from send_devkit.devstack import DevStack
from send_devkit.ports import free_port
from send_devkit.tokens import mint_token

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "test-artefacts"
AXE = ROOT / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"  # `make node-tools` (pinned 4.14.1)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)"
)


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


def sign_in(page: Any, base: str, then: str) -> None:
    """Through the development sign-in page, as a person would (the token never appears in a URL)."""
    page.goto(f"{base}/signin?{urlencode({'next': then})}")
    page.select_option("#organisation", "org-northshire-la")
    page.check("input[name=role][value=ops]")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{then.split('?')[0]}**")


@needs_chromium
def test_dashboard_shows_the_apis_figures_and_filters(stack: DevStack) -> None:
    from playwright.sync_api import sync_playwright

    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    # Let the projection settle: the same figures twice in a row.
    previous, figures = None, api_figures(stack, f"/v1/metrics/area/la-northshire?as_of={yesterday}")
    while figures != previous:
        asyncio.run(asyncio.sleep(1))
        previous, figures = figures, api_figures(stack, f"/v1/metrics/area/la-northshire?as_of={yesterday}")
    base = stack.url("waitlists")
    ARTEFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        sign_in(page, base, f"/dashboard/?scope=area&scope_id=la-northshire&as_of={yesterday}")
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
        page.focus("#filters button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_selector("body[data-loaded*='svc-camhs-core']", timeout=20_000)
        service = api_figures(stack, f"/v1/metrics/service/svc-camhs-core?as_of={yesterday}")
        withheld = set(service["withheld"])  # type: ignore[arg-type]
        assert page.text_content('[data-figure="waiting"]') == text(service["waiting"]["waiting"], "waiting.waiting")  # type: ignore[index]
        assert "svc-camhs-core" in page.url
        page.screenshot(path=str(ARTEFACTS / "dashboard-camhs.png"), full_page=True)
        browser.close()
    assert (ARTEFACTS / "dashboard-area.png").stat().st_size > 10_000


def settled(stack: DevStack, path: str) -> dict[str, object]:
    """The API's answer once the projection has caught up: the same twice in a row."""
    previous, found = None, api_figures(stack, path)
    while found != previous:
        asyncio.run(asyncio.sleep(1))
        previous, found = found, api_figures(stack, path)
    return found


NOTHING = "\u2013"  # the page's mark for nothing to measure


def pct_text(value: object) -> str:
    return NOTHING if value is None else f"{value:.1f}%"


def trend_text(point: dict[str, object] | None) -> str:
    """A trend point as the page shows it: its share within target and the count behind it."""
    if point is None:
        return NOTHING
    held = set(point.get("withheld") or [])  # type: ignore[call-overload]
    value, stopped = point["pct_within_target"], point["stopped"]
    n = "withheld" if stopped is None or "stopped" in held else str(stopped)
    share = "withheld" if "pct_within_target" in held or (value is None and stopped is None) else pct_text(value)
    if n == share == "withheld":
        return "withheld"
    return "none stopped" if n == "0" else f"{share} of {n} stopped"


@needs_chromium
def test_dashboard_shows_every_figure_of_section_5_readably(stack: DevStack) -> None:
    """The panels the brief's §5 asks for, checked against the API; names, not ids; the breaching-row marker;
    CSV links for the selection; no request leaves the service (the page works offline); no axe violations."""
    from playwright.sync_api import sync_playwright

    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    query = f"scope=area&scope_id=la-northshire&as_of={day}"
    figures = settled(stack, f"/v1/metrics/area/la-northshire?as_of={day}")
    services = api_figures(stack, f"/v1/dashboard/services?{query}")
    assert isinstance(services, list)
    withheld = set(figures["withheld"])  # type: ignore[arg-type]

    def shown(value: object, path: str) -> str:
        return "withheld" if path in withheld or value is None else str(value)

    def share(value: object, path: str) -> str:
        return "withheld" if path in withheld else pct_text(value)

    base = stack.url("waitlists")
    ARTEFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # The axe script is injected inline, which the page's own policy rightly refuses: bypass it for the test.
        context = browser.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=True, accept_downloads=True)
        page = context.new_page()
        elsewhere: list[str] = []
        page.on(
            "request", lambda r: elsewhere.append(r.url) if not r.url.startswith((base, "blob:", "data:")) else None
        )
        sign_in(page, base, f"/dashboard/?{query}")
        page.wait_for_selector("body[data-loaded]", timeout=20_000)

        # Names people read: the area by its council's name, clocks in words.
        assert (
            page.eval_on_selector("#scope-id", "s => s.selectedOptions[0].textContent") == "Northshire County Council"
        )
        assert "la-northshire" not in (page.text_content("#status") or "")
        clocks = figures["clocks"]
        assert isinstance(clocks, dict) and clocks
        if "cypmh_4w" in clocks:
            assert page.text_content('#clocks tr[data-clock="cypmh_4w"] th') == "CYPMH 4 weeks"
        assert "_" not in (page.text_content("#clocks tbody") or "")
        # % within target per clock, all and excluding exceptions, beside each other; breaches per clock.
        for kind, c in clocks.items():
            cell = f'[data-figure="clock-{kind}-%s"]'
            assert page.text_content(cell % "pct") == share(c["pct_within_target"], f"clocks.{kind}.pct_within_target")
            assert page.text_content(cell % "pct-ex") == share(
                c["pct_within_target_ex"], f"clocks.{kind}.pct_within_target_ex"
            )
            assert page.text_content(cell % "breached") == shown(
                c["breached_and_waiting"], f"clocks.{kind}.breached_and_waiting"
            )
        assert page.locator('[data-figure="within-target"]').count() == 0  # no single clock picked silently
        # Long waiters at 52, 65, 78 and 104 weeks.
        long = figures["waiting"]["long_waiters"]  # type: ignore[index]
        assert sorted(long, key=int) == ["52", "65", "78", "104"]
        for weeks, n in long.items():
            assert page.text_content(f'[data-figure="long-{weeks}"]') == shown(n, f"waiting.long_waiters.{weeks}")
        # Rejections by reason, and the rate.
        for reason, n in figures["rejections_by_reason"].items():  # type: ignore[union-attr]
            assert page.text_content(f'[data-figure="reason-{reason}"]') == shown(n, f"rejections_by_reason.{reason}")
        assert page.text_content('[data-figure="rejection-rate-table"]') == share(
            figures["rejection_rate"], "rejection_rate"
        )
        # Weekly flows: the numbers behind the chart, week by week.
        flows = figures["weekly_flows"]
        assert isinstance(flows, list) and len(flows) == 12
        page.click("#chart-flows summary")
        rows = page.locator("#chart-flows tbody tr")
        assert rows.count() == len(flows)
        for i, week in enumerate(flows):
            cells = rows.nth(i).locator("td").all_text_contents()
            assert cells == [shown(week[f], f"weekly_flows.{i}.{f}") for f in ("referrals_in", "started", "closed")]
        # Trend: a target line, a legend naming each line, a tooltip on each point drawn, the numbers behind them.
        points = api_figures(stack, f"/v1/dashboard/trend?{query}")
        assert isinstance(points, list)
        trend = page.locator("#chart-trend")
        if trend.locator(".empty").count() == 0:
            assert trend.locator("line.target").count() == 1
            kinds = list(dict.fromkeys(t["clock"] for t in points))
            assert trend.locator(".legend li").count() == len(kinds)
            drawn = [t for t in points if t["pct_within_target"] is not None]
            assert trend.locator(".series title").count() == len(drawn)
            trend.locator("summary").click()
            months = sorted({t["month_end"] for t in points})
            shown_rows = trend.locator("tbody tr")
            for i, month in enumerate(months):
                at = {t["clock"]: t for t in points if t["month_end"] == month}
                assert shown_rows.nth(i).locator("td").all_text_contents() == [trend_text(at.get(k)) for k in kinds]
        # Per service: p90 beside the median, organisation names, rows in the API's order.
        organisations = {o["id"]: o["name"] for o in api_figures(stack, "/v1/dashboard/scopes")["organisations"]}  # type: ignore[index, union-attr]
        table = page.locator("#risk tbody tr")
        assert table.count() == len(services)
        for i, s in enumerate(services):
            row = table.nth(i)
            assert row.get_attribute("data-service") == s["service_id"]
            p90 = (
                "withheld"
                if "p90_days" in s["withheld"]
                else (NOTHING if s["p90_days"] is None else str(s["p90_days"]))
            )
            assert row.locator('[data-figure="service-p90"]').text_content() == p90
            assert row.locator("td").first.text_content() == organisations[s["organisation_id"]]
            # The breaching-row marker: a red bar on the row's first cell (a th) and the word "breached".
            breached = isinstance(s["breached_waiting"], int) and s["breached_waiting"] > 0
            assert (row.get_attribute("class") == "bad") == breached
            border = row.locator("th").evaluate("e => getComputedStyle(e).borderLeftWidth")
            assert (border == "5px") == breached, (s, border)
            assert (row.locator(".marker").count() == 1) == breached
        assert any(isinstance(s["breached_waiting"], int) and s["breached_waiting"] > 0 for s in services)
        # CSV exports for the current selection, fetched with the token.
        links = page.locator("#downloads a")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert f"../v1/exports/rtt-distribution.csv?scope=area&scope_id=la-northshire&as_of={day}" in hrefs
        assert f"../v1/exports/ehc-timeliness.csv?area_id=la-northshire&year={day[:4]}" in hrefs
        with page.expect_download() as download:
            links.first.click()
        saved = download.value
        assert saved.suggested_filename == f"rtt-distribution-la-northshire-{day}.csv"
        assert Path(saved.path()).read_text().strip()
        # The rules in the page's own words, and a methods page the service serves.
        assert "brief" not in (page.text_content("body") or "").lower()
        page.screenshot(path=str(ARTEFACTS / "dashboard-desktop.png"), full_page=True)

        if AXE.exists():
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate("async () => (await axe.run()).violations.map(v => [v.id, v.nodes.length])")
            assert violations == [], violations
            page.goto(f"{base}/dashboard/methods.html")
            page.add_script_tag(path=str(AXE))
            assert page.evaluate("async () => (await axe.run()).violations.map(v => v.id)") == []
        else:
            pytest.fail("axe-core is missing: run `make node-tools`")
        assert elsewhere == []

        # At 390 px wide nothing scrolls sideways.
        phone = context.new_page()
        phone.set_viewport_size({"width": 390, "height": 844})
        phone.goto(f"{base}/dashboard/?{query}")  # the same browser: already signed in
        phone.wait_for_selector("body[data-loaded]", timeout=20_000)
        for summary in phone.locator("details summary").all():
            summary.click()  # the tables behind the charts, open
        assert phone.evaluate("document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth")
        phone.screenshot(path=str(ARTEFACTS / "dashboard-390px.png"), full_page=True)
        browser.close()


@needs_chromium
def test_dashboard_defaults_to_the_london_date_and_handles_withheld_and_empty_trends(stack: DevStack) -> None:
    from playwright.sync_api import Route, sync_playwright

    base = stack.url("waitlists")
    api_figures(stack, "/v1/dashboard/scopes")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(timezone_id="UTC")
        page = context.new_page()
        # 23:30 UTC on 30 June is already 1 July in London (BST).
        page.clock.set_fixed_time(datetime(2026, 6, 30, 23, 30, tzinfo=UTC))
        sign_in(page, base, "/dashboard/?scope=area&scope_id=la-northshire")
        assert page.input_value("#as-of") == "2026-07-01"

        # Trend points whose values disclosure control withholds show as "withheld", never as 0.
        month = {"month_start": "2026-05-01", "month_end": "2026-05-31", "clock": "cypmh_4w"}
        points = [
            {**month, "stopped": None, "pct_within_target": None, "pct_within_target_ex": None,
             "withheld": ["stopped", "pct_within_target", "pct_within_target_ex"]},
            {**month, "month_start": "2026-06-01", "month_end": "2026-06-30", "stopped": 20,
             "pct_within_target": 85.0, "pct_within_target_ex": 85.0, "withheld": []},
        ]  # fmt: skip

        def withheld_trend(route: Route) -> None:
            route.fulfill(json=points)

        page.route("**/v1/dashboard/trend*", withheld_trend)
        page.goto(f"{base}/dashboard/?scope=area&scope_id=la-northshire&as_of=2026-06-30")
        page.wait_for_selector("body[data-loaded]", timeout=20_000)
        page.click("#chart-trend summary")
        cells = page.locator("#chart-trend tbody td").all_text_contents()
        assert cells == ["withheld", "85.0% of 20 stopped"]
        assert page.locator("#chart-trend .series title").all_text_contents() == [
            "CYPMH 4 weeks, Jun 26: 85.0% of 20 stopped"
        ]

        # An empty chart says so.
        page.unroute("**/v1/dashboard/trend*")
        none = [{**month, "stopped": 0, "pct_within_target": None, "pct_within_target_ex": None}]
        page.route("**/v1/dashboard/trend*", lambda route: route.fulfill(json=none))
        page.click("#filters button[type=submit]")
        page.wait_for_selector("#chart-trend .empty", timeout=20_000)
        assert "No clocks stopped" in (page.text_content("#chart-trend") or "")
        browser.close()


@needs_chromium
def test_swagger_ui_works_offline_authorize_then_try_it_out_submits_a_referral(stack: DevStack) -> None:
    """A school's developer with no internet: the docs page loads from the service alone, Authorize takes a
    token, and "Try it out" submits a referral that the API then serves."""
    from playwright.sync_api import Route, sync_playwright

    base = stack.url("referrals")
    token = mint_token("org-riverside-primary", "referrer")
    body = {
        "service_id": "svc-camhs-core",
        "child": {"given_name": "Ada", "family_name": "Swagger", "date_of_birth": "2014-06-01",
                  "nhs_number": nhs_number(random.Random())},
        "primary_need": "SEMH",
        "reason": "Submitted from the API docs page.",
        "urgency": "routine",
        "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "Referral to CAMHS"},
    }  # fmt: skip
    elsewhere: list[str] = []

    def offline(route: Route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    ARTEFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.route("**/*", offline)
        page.goto(f"{base}/docs")
        page.click("button.authorize")
        page.fill(".auth-container input", token)
        page.click(".auth-btn-wrapper button.authorize")
        page.click(".auth-btn-wrapper button.btn-done")
        operation = page.locator(".opblock-post", has=page.locator(".opblock-summary-path[data-path='/v1/referrals']"))
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        operation.locator("textarea.body-param__text").fill(json.dumps(body))
        operation.locator("tr[data-param-name='Idempotency-Key'] input").fill(f"swagger-{uuid.uuid4()}")
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table tbody .response-col_status").first
        status.wait_for(timeout=20_000)
        page.screenshot(path=str(ARTEFACTS / "swagger-try-it-out.png"), full_page=False)
        assert status.text_content().strip() == "201", operation.locator(".live-responses-table").text_content()
        created = json.loads(operation.locator(".live-responses-table tbody .microlight").first.text_content())
        browser.close()
    assert not elsewhere, f"the docs page reached outside the service: {elsewhere}"
    served = httpx.get(f"{base}/v1/referrals/{created['id']}", headers={"authorization": f"Bearer {token}"})
    assert served.status_code == 200 and served.json()["child"]["family_name"] == "Swagger"


@needs_chromium
def test_signing_in_and_out_in_the_browser_in_development(stack: DevStack) -> None:
    """An operations person opens the dashboard, is asked to sign in, picks who they are on the development
    page, sees the figures, and signs out. No token ever appears in a URL."""
    from playwright.sync_api import sync_playwright

    base = stack.url("waitlists")
    api_figures(stack, "/v1/dashboard/scopes")
    visited: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.on("request", lambda r: visited.append(r.url))
        page.goto(f"{base}/dashboard/?scope=area&scope_id=la-northshire")
        page.get_by_role("link", name="Sign in").click()
        page.wait_for_selector("#organisation")
        assert page.locator("#organisation option[value='org-northshire-la']").count() == 1
        page.select_option("#organisation", "org-northshire-la")
        page.get_by_label("operations staff").check()
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("body[data-loaded]", timeout=20_000)
        assert page.url.startswith(f"{base}/dashboard/?scope=area&scope_id=la-northshire")
        cookie = next(c for c in page.context.cookies() if c["name"] == "send_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert page.evaluate("document.cookie") == "", "the session is out of the page script's reach"
        page.screenshot(path=str(ARTEFACTS / "dashboard-signed-in.png"))
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_selector("#organisation")
        page.goto(f"{base}/dashboard/?scope=area&scope_id=la-northshire")
        page.get_by_role("link", name="Sign in").wait_for()
        browser.close()
    assert not [u for u in visited if "token" in u or "eyJ" in u], "a token appeared in a URL"
