"""The family view's deadline comes from waitlists (issue 17), the whole system as processes on a real broker.

A school refers a child to the local authority's EHC needs assessment. Waitlists projects the referral, works out
its statutory clocks (the only place their rules live) and tells them on its topic; the referrals service keeps
them in ``referral_clocks``. When the local authority accepts (it decided to assess), the decision clock is met
and the referrals service holds the newer clocks. Dates by the rules of the SEND Code of Practice: the decision
within 6 weeks (42 days: late from the 43rd day), the final plan within 20 weeks (140 days: late from the 141st).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from send_devkit.devstack import DevStack
from send_devkit.ports import free_port
from send_devkit.tokens import mint_token

pytestmark = pytest.mark.e2e
SCHOOL, LA = "org-riverside-primary", "org-northshire-la"
EHC = "svc-ehc-assessment"


def auth(org: str, role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(org, role)}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    ports = {name: free_port() for name in ("referrals", "waitlists", "notifications")}
    with DevStack(
        var_dir=tmp_path_factory.mktemp("var"), broker_port=free_port(), ports=ports, smtp_port=free_port()
    ) as running:
        yield running


def held_clocks(db: Path, referral_id: str) -> tuple[int, list[dict[str, Any]]] | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT referral_version, clocks FROM referral_clocks WHERE referral_id = ?", (referral_id,)
        ).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def wait_for_version(db: Path, referral_id: str, version: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found = None
    while time.monotonic() < deadline:
        found = held_clocks(db, referral_id)
        if found is not None and found[0] >= version:
            return found[1]
        time.sleep(0.25)
    raise AssertionError(f"the referrals service holds {found} for {referral_id}, not version {version}")


def move(base: str, referral_id: str, body: dict[str, Any]) -> None:
    current = httpx.get(f"{base}/v1/referrals/{referral_id}", headers=auth(LA, "receiver"))
    assert current.status_code == 200, current.text
    moved = httpx.post(f"{base}/v1/referrals/{referral_id}/status", json=body,
                       headers={**auth(LA, "receiver"), "if-match": current.headers["etag"]})  # fmt: skip
    assert moved.status_code == 200, moved.text


def test_an_ehc_referral_gets_its_statutory_deadlines_from_waitlists(stack: DevStack) -> None:
    base = stack.url("referrals")
    body = {
        "service_id": EHC,
        "child": {"given_name": "Robin", "family_name": "Deadline", "date_of_birth": "2016-09-01",
                  "nhs_number": "9434765870"},
        "primary_need": "SLCN",
        "reason": "Speech and language needs not met by SEN support.",
        "urgency": "routine",
        "consent": {"given_by": "parent", "given_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
                    "scope": "The family agreed to an EHC needs assessment request."},
    }  # fmt: skip
    made = httpx.post(
        f"{base}/v1/referrals",
        json=body,
        headers={**auth(SCHOOL, "referrer"), "idempotency-key": f"clk-{time.time_ns()}"},
    )
    assert made.status_code == 201, made.text
    referral_id = made.json()["id"]
    start = datetime.now(ZoneInfo("Europe/London")).date()
    db = stack.var_dir / "referrals.db"

    clocks = wait_for_version(db, referral_id, 1)
    # The no-plan clock applies only once the authority decides on no plan: not told while the referral waits.
    assert [(c["clock"], c["state"], c["start_date"]) for c in clocks] == [
        ("ehc_decision_6w", "running", start.isoformat()),
        ("ehc_plan_20w", "running", start.isoformat()),
    ]
    assert [date.fromisoformat(c["breach_date"]) - start for c in clocks] == [timedelta(days=43), timedelta(days=141)]

    move(base, referral_id, {"status": "acknowledged"})  # changes no clock: nothing new is told
    move(base, referral_id, {"status": "accepted"})  # the authority decided to assess
    decided = datetime.now(ZoneInfo("Europe/London")).date()
    clocks = wait_for_version(db, referral_id, 3)
    assert [(c["clock"], c["state"], c["stopped_on"]) for c in clocks] == [
        ("ehc_decision_6w", "met", decided.isoformat()),
        ("ehc_plan_20w", "running", None),
    ]
    assert date.fromisoformat(clocks[1]["breach_date"]) - start == timedelta(days=141)
