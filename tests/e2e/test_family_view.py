"""The family view (issue 17) in a real browser (Debian's Chromium), against the whole system as processes.

The link arrives the way a family gets it: the referrals service emails it, the development SMTP sink receives it,
and the test reads the token out of the message. Then, on a phone-sized screen: the page shows this child's
referrals and nobody else's; an expired and a revoked link are refused; no other child's referral can be reached
by guessing tokens or ids; axe-core finds no WCAG 2.2 AA violation; the forms work without script; screenshots go
to test-artefacts/family-view/."""

from __future__ import annotations

import email
import itertools
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from send_devkit.devstack import DevStack
from send_devkit.ports import free_port
from send_devkit.tokens import mint_token

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artefacts" / "family-view"
AXE = ROOT / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"  # `make node-tools`
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PHONE = {"width": 360, "height": 740}
SCHOOL, CAMHS, LA, TRUST = "org-riverside-primary", "org-northshire-camhs", "org-northshire-la", "org-riverside-mat"
_keys = itertools.count()


def chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


needs_chromium = pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


def auth(org: str, role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(org, role)}"}


def submit(base: str, service_id: str, nhs_number: str, given_name: str, need: str = "SEMH") -> str:
    body = {
        "service_id": service_id,
        "child": {"given_name": given_name, "family_name": "Familyview", "date_of_birth": "2015-04-12",
                  "nhs_number": nhs_number},
        "primary_need": need,
        "reason": "Internal note: the teacher is worried about attendance.",
        "urgency": "routine",
        "consent": {"given_by": "parent", "given_at": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
                    "scope": "The family agreed to CAMHS and the council."},
    }  # fmt: skip
    headers = {**auth(SCHOOL, "referrer"), "idempotency-key": f"family-view-{next(_keys)}-{time.time_ns()}"}
    made = httpx.post(f"{base}/v1/referrals", json=body, headers=headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def move(base: str, referral_id: str, org: str, body: dict[str, Any]) -> None:
    current = httpx.get(f"{base}/v1/referrals/{referral_id}", headers=auth(org, "receiver"))
    assert current.status_code == 200, current.text
    moved = httpx.post(f"{base}/v1/referrals/{referral_id}/status", json=body,
                       headers={**auth(org, "receiver"), "if-match": current.headers["etag"]})  # fmt: skip
    assert moved.status_code == 200, moved.text


def make_link(base: str, referral_id: str, to: str, **extra: Any) -> str:
    made = httpx.post(f"{base}/v1/referrals/{referral_id}/family-links", json={"email": to, **extra},
                      headers=auth(SCHOOL, "referrer"))  # fmt: skip
    assert made.status_code == 201, made.text
    assert "token" not in made.text
    return str(made.json()["id"])


def token_sent_to(mail: Path, to: str, seen: set[str], timeout: float = 30) -> str:
    """The token in the newest email to ``to`` not read before (the worker sends within a second or two)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(mail.glob("*.eml")):
            if path.name in seen:
                continue
            message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            assert isinstance(message, EmailMessage)
            if message["To"] != to:
                continue
            seen.add(path.name)
            body = message.get_body(("plain",))
            assert body is not None
            found = re.search(r"/family/([A-Za-z0-9_-]{43})\b", body.get_content())
            assert found, body.get_content()
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no email to {to} in {mail}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    ports = {name: free_port() for name in ("referrals", "waitlists", "notifications")}
    with DevStack(
        var_dir=tmp_path_factory.mktemp("var"), broker_port=free_port(), ports=ports, smtp_port=free_port()
    ) as running:
        yield running


def axe_violations(page: Any) -> list[Any]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(  # type: ignore[no-any-return]
        "async tags => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => [v.id, v.impact, v.nodes.map(n => n.target.join(' '))])",
        WCAG_22_AA,
    )


def no_sideways_scroll(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@needs_chromium
def test_the_family_view_in_a_phone_browser(stack: DevStack) -> None:
    from playwright.sync_api import sync_playwright

    if not AXE.exists():
        pytest.fail("axe-core is missing: run `make node-tools`")
    base = stack.url("referrals")
    mail = stack.var_dir / "mail"
    seen: set[str] = set()
    # Child A: CAMHS (then put on hold by CAMHS) and the council's EHC needs assessment. Child B: speech therapy.
    camhs = submit(base, "svc-camhs-core", "9434765919", "Ayla")
    ehc = submit(base, "svc-ehc-assessment", "9434765919", "Ayla")
    other = submit(base, "svc-trust-slt", "4010232137", "Bertie", need="SLCN")
    move(base, camhs, CAMHS, {"status": "acknowledged"})
    resume = date.today() + timedelta(days=40)
    move(base, camhs, CAMHS, {"status": "on_hold", "reason_code": "service_capacity",
                              "expected_resume": resume.isoformat(), "explanation": "Clinician off sick"})  # fmt: skip
    make_link(base, camhs, "ayla-family@families.example")
    token = token_sent_to(mail, "ayla-family@families.example", seen)
    make_link(base, other, "bertie-family@families.example")
    other_token = token_sent_to(mail, "bertie-family@families.example", seen)
    revoked_id = make_link(base, camhs, "ayla-revoked@families.example")
    revoked_token = token_sent_to(mail, "ayla-revoked@families.example", seen)
    gone = httpx.delete(f"{base}/v1/referrals/{camhs}/family-links/{revoked_id}", headers=auth(CAMHS, "receiver"))
    assert gone.status_code == 200 and gone.json()["state"] == "revoked"
    expired_id = make_link(base, ehc, "ayla-expired@families.example", expires_in_days=1)
    expired_token = token_sent_to(mail, "ayla-expired@families.example", seen)
    with sqlite3.connect(stack.var_dir / "referrals.db") as db:  # a day passes for this link only
        db.execute("UPDATE family_links SET expires_at = created_at WHERE id = ?", (expired_id,))
    # Nothing personal in the emails; the token is not in the store.
    for path in mail.glob("*.eml"):
        text = path.read_text(errors="replace")
        assert "Ayla" not in text and "Bertie" not in text and "9434765919" not in text
    with sqlite3.connect(stack.var_dir / "referrals.db") as db:
        stored = repr(db.execute("SELECT * FROM family_links").fetchall())
        stored += repr(db.execute("SELECT * FROM family_link_emails").fetchall())
    assert token not in stored and other_token not in stored

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=ARGS)
        # bypass_csp: the axe script is injected inline, which the page's policy rightly refuses.
        context = browser.new_context(viewport=PHONE, bypass_csp=True, is_mobile=True, has_touch=True)
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(base) else None)

        # The right child's page, in plain words, on a phone.
        response = page.goto(f"{base}/family/{token}")
        assert response is not None and response.status == 200
        assert response.headers["cache-control"] == "no-store" and "noindex" in response.headers["x-robots-tag"]
        body = page.text_content("main") or ""
        assert "CAMHS core" in body and "EHC needs assessment" in body
        assert "Trust speech and language therapy" not in body
        assert "The work has stopped for a short time." in body
        assert "The service is very busy, so your child has to wait." in body
        assert f"{resume:%B}" in body and "01632 960 200" in body and "send-team@northshire.example" in body
        for secret in ("Ayla", "Familyview", "9434765919", "Internal note", "Clinician off sick", camhs, ehc):
            assert secret not in (page.content()), secret
        assert page.locator("section.card").count() == 2
        no_sideways_scroll(page)
        assert axe_violations(page) == []
        page.screenshot(path=str(SHOTS / "page-phone.png"), full_page=True)

        # Contact preferences, without script.
        page.fill("#email", "new-address@families.example")
        page.fill("#phone", "07700 900123")
        page.check("#preference-text")
        page.click("form[action$='/contact'] button[type=submit]")
        assert "We have saved how to get in touch." in (page.text_content("main") or "")
        assert page.input_value("#email") == "new-address@families.example"
        page.screenshot(path=str(SHOTS / "contact-saved-phone.png"), full_page=True)

        # Withdrawing consent asks first.
        page.click("a[href$='/withdraw']")
        assert "Are you sure" in (page.text_content("h1") or "")
        no_sideways_scroll(page)
        assert axe_violations(page) == []
        page.screenshot(path=str(SHOTS / "withdraw-confirm-phone.png"), full_page=True)
        page.click("button[type=submit]")
        assert "You have said no to sharing" in (page.text_content("h1") or "")
        assert axe_violations(page) == []
        page.screenshot(path=str(SHOTS / "withdraw-done-phone.png"), full_page=True)
        shown = httpx.get(f"{base}/v1/referrals/{ehc}", headers=auth(SCHOOL, "referrer")).json()
        assert shown["status"] == "withdrawn"  # before acceptance, the referral ends with consent

        # Refused: revoked, expired, and guesses (another child's id, a near token) — the same friendly page.
        for name, path, status in [
            ("revoked", f"/family/{revoked_token}", 410),
            ("expired", f"/family/{expired_token}", 410),
            ("near-token", f"/family/{token[:-1]}{'A' if token[-1] != 'A' else 'B'}", 404),
            ("referral-id", f"/family/{other}", 404),
            ("other-childs-withdraw", f"/family/{other}/withdraw", 404),
        ]:
            answer = page.goto(f"{base}{path}")
            assert answer is not None and answer.status == status, (name, answer and answer.status)
            assert "This link does not work" in (page.text_content("main") or ""), name
            assert "Bertie" not in page.content() and "speech" not in page.content().lower(), name
            if name in ("revoked", "expired"):
                assert axe_violations(page) == []
                page.screenshot(path=str(SHOTS / f"refused-{name}-phone.png"), full_page=True)
        # The other child's page is only behind its own token, and shows only that child.
        page.goto(f"{base}/family/{other_token}")
        assert "Trust speech and language therapy" in (page.text_content("main") or "")
        assert "CAMHS core" not in (page.text_content("main") or "")
        # A signed-out browser reaches no referral by id.
        answer = page.goto(f"{base}/referrals/{other}")
        assert answer is not None and "/signin" in page.url and "Bertie" not in page.content()
        assert outside == []
        browser.close()

    # Every view is in the audit log, as the family.
    entries = httpx.get(f"{base}/v1/audit", params={"referral_id": camhs, "limit": 100},
                        headers=auth("org-platform", "platform_admin")).json()  # fmt: skip
    views = [e for e in entries if e["action"] == "family_view"]
    assert views and all(e["organisation_id"] == "family" and e["subject"].startswith("family-link:") for e in views)
    assert (SHOTS / "page-phone.png").stat().st_size > 10_000
